package config

// setReceipts reads "receipts: true|false". Only the two words: a yes or 1
// that silently meant something else would leave an operator believing
// hosts report what they did.
func (p *parser) setReceipts(n int, v string) error {
	switch v {
	case "true":
		p.c.Receipts = true
	case "false":
		p.c.Receipts = false
	default:
		return p.errf(n, nil, "write receipts: true to have receivers publish a receipt for each message they act on, or remove the line",
			"receipts: %s is neither true nor false", show(v))
	}
	return nil
}
