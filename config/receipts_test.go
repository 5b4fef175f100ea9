package config

import (
	"strings"
	"testing"
)

func TestReceiptsKey(t *testing.T) {
	base := "server: nats://127.0.0.1:4222\ncredentials: /c\ndestination: com.example.h1\n"
	c, err := Parse("t.conf", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Receipts {
		t.Fatal("receipts on by default")
	}
	c, err = Parse("t.conf", []byte(base+"receipts: true\n"))
	if err != nil || !c.Receipts {
		t.Fatalf("receipts: true gave %v, %v", c != nil && c.Receipts, err)
	}
	if !strings.Contains(string(c.Format()), "receipts: true\n") {
		t.Fatalf("Format drops receipts:\n%s", c.Format())
	}
	for _, bad := range []string{"yes", "1", "TRUE", ""} {
		_, err := Parse("t.conf", []byte(base+"receipts: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "receipts") {
			t.Errorf("receipts: %q: error %v", bad, err)
		}
	}
}
