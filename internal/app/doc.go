// Package app is mailgate's composition root: it owns turning a
// configuration into running parts, so that every command, serve and the
// demo build them the same way.
//
// What it owns:
//   - profiles to oauth.Profile (certificate files loaded, the HTTP client
//     with the profile's proxy and tls_ca) and one oauth.Manager over the
//     store, whose Bearer is the one token hook of every mailbox and sender;
//   - sinks (opened once, closed with the App), mailboxes (a complete
//     agent.Mailbox built in one place: dialer, token, sink, after, mode,
//     interval, host) and senders (outbox.Sender, graph.Sender);
//   - RunOnce (`mailgate run`), with serve's per-host login cap;
//   - the serve generations: Start, Reload on each console change, Stop;
//     the console (web.Server) with its record editor (Records), metrics,
//     the heartbeat `mailgate send` looks for; Listen and HTTPServer give
//     serve's listener and limits;
//   - Test (`mailgate test`, the console's Test button) and Diagnose
//     (`mailgate doctor`), the only home of the advice on Entra ID and
//     Exchange Online refusals (TokenAdvice, MailboxAdvice);
//   - the console's records: which fit the config file and build
//     (MergeRecords, Records), refused with a *config.Error naming the key.
//
// How to use it:
//  1. cli loads the config file and opens the store (OpenStore).
//  2. app.Open(ctx, cfg, store, opts) merges the console's records and
//     builds the profiles; it does no network I/O.
//  3. Call one method (RunOnce, Test, Diagnose, Send…) and print what
//     it returns, or Start, then Reload on each value of Reloads, then Stop.
//  4. Close the App, then the store.
//
// Problems of the configuration found while building are *KeyError
// (exit 2 in cli, 422 in the API); everything else is the world's.
package app
