// Package arch holds no code, only the test that keeps mailgate's
// dependency rule (DEVELOPING.md, house rule 1): the arrows point inwards.
//
// deps_test.go lists every package of the module with `go list -deps`
// and checks, on the non-test code:
//
//   - protocol packages (sasl, imap, pop3, smtp, graph, oauth) depend on no
//     mailgate package but the leaf helpers (loopback, redact);
//   - the leaf helpers and the emulator depend on no mailgate package;
//   - store depends on no mailgate package (its own subpackages aside): it
//     keeps other packages' data as plain values, and the composition root
//     adapts it to oauth.Store and agent.Ledger;
//   - agent does not depend on store, sink not on config;
//   - cli imports neither agent, sink, mailbox nor outbox: it parses,
//     calls the composition root and prints;
//   - the test-support packages (dovecot, pgtest, testcert) are for tests
//     and bench/ only: no other package's non-test code depends on them,
//     and testcert depends on no mailgate package.
//
// A rule whose package no longer exists fails too, so that renaming a
// package cannot switch its rule off silently.
package arch
