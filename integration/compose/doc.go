// Package compose is the Docker Compose harness: a three-node NATS
// JetStream cluster, the auditor, one uploader, three downloaders and an
// intruder in containers (docker-compose.yml at the repository root), with
// fresh keys for every run, and the scenarios that must hold across them.
//
// The test needs a Docker engine and `docker compose` or `docker-compose`,
// so it only builds with the compose tag:
//
//	go test -tags compose -count=1 -timeout 15m -v ./integration/compose/
//
// scripts/compose-test.sh checks the prerequisites and runs exactly that;
// README.md in this directory is the harness's manual.
package compose
