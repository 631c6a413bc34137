package web

import (
	"net/http"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
)

// schemaName is the OpenAPI schema of a record kind: "mailboxes" → "Mailbox".
func schemaName(kind string) string {
	s := config.Singular(kind)
	return strings.ToUpper(s[:1]) + s[1:]
}

// openapi serves the OpenAPI 3.1 description of /api/v1.
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	list := func(kind, item string) map[string]any {
		return map[string]any{"get": map[string]any{"summary": "List " + kind + " (secrets shown as set / not set)",
			"responses": map[string]any{"200": map[string]any{"description": "the " + kind, "content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"type": "object", "properties": map[string]any{kind: map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/" + item}}}}}}},
				"401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}}
	}
	one := func(kind, item string) map[string]any {
		return map[string]any{"get": map[string]any{"summary": "One of the " + kind,
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"responses": map[string]any{"200": map[string]any{"description": "the record", "content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"$ref": "#/components/schemas/" + item}}}},
				"404": map[string]any{"description": "no such record"}, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}}
	}
	obj := func(props ...string) map[string]any {
		p := map[string]any{}
		for _, n := range props {
			p[n] = map[string]any{}
		}
		return map[string]any{"type": "object", "properties": p}
	}
	write := func(kind, item string) (map[string]any, map[string]any) {
		body := map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + item + "Input"}}}}
		bad := map[string]any{"description": "the configuration with this change has problems (listed by key path)"}
		name := []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
		create := map[string]any{"post": map[string]any{"summary": "Create a console " + item, "requestBody": body,
			"responses": map[string]any{"201": map[string]any{"description": "created", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + item}}}},
				"422": bad, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}}
		change := map[string]any{
			"put": map[string]any{"summary": "Change a console " + item + " (not one from the config file)", "parameters": name, "requestBody": body,
				"responses": map[string]any{"200": map[string]any{"description": "changed"}, "422": bad, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}},
			"delete": map[string]any{"summary": "Delete a console " + item + " nothing refers to", "parameters": name,
				"responses": map[string]any{"204": map[string]any{"description": "deleted"}, "404": map[string]any{"description": "no such record"},
					"409": map[string]any{"description": "the record comes from the config file"}, "422": bad, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}},
		}
		return create, change
	}
	doc := map[string]any{
		"openapi":  "3.1.0",
		"info":     map[string]any{"title": "mailgate API", "version": "1"},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}},
		"paths": map[string]any{
			"/api/v1/outbox":     outboxList(list("outbox", "OutboxMessage")),
			"/api/v1/deliveries": list("deliveries", "Delivery"),
			"/api/v1/messages":   list("messages", "Message"),
			"/api/v1/messages/{id}/eml": map[string]any{"get": map[string]any{"summary": "A kept message's raw bytes",
				"parameters": []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
				"responses": map[string]any{"200": map[string]any{"description": "the message", "content": map[string]any{"message/rfc822": map[string]any{}}},
					"404": map[string]any{"description": "no such message"}, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}},
			"/api/v1/held": map[string]any{"get": map[string]any{"summary": "Messages a sink refused, set aside so the rest flows (held, deferred, failing, retry; dropped ones left out)",
				"parameters": []any{map[string]any{"name": "mailbox", "in": "query", "required": false, "schema": map[string]any{"type": "string"}}},
				"responses": map[string]any{"200": map[string]any{"description": "the held messages", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "object", "properties": map[string]any{"held": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/HeldMessage"}}}}}}},
					"401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}},
			"/api/v1/held/{mailbox}/retry": map[string]any{"post": map[string]any{"summary": "Retry every held message of a mailbox at its next run",
				"parameters": []any{heldParam("mailbox")},
				"responses":  map[string]any{"200": map[string]any{"description": "how many will be retried ({\"retry\": n})"}, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}},
			"/api/v1/held/{mailbox}/{key}/retry": map[string]any{"post": map[string]any{"summary": "Retry a held message at the mailbox's next run (delivered once, then its after-action applied)",
				"parameters": []any{heldParam("mailbox"), heldParam("key")},
				"responses": map[string]any{"200": map[string]any{"description": "{\"retry\": 1}"}, "404": map[string]any{"description": "no such held message"},
					"401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}},
			"/api/v1/held/{mailbox}/{key}/drop": map[string]any{"post": heldDrop()},
			"/api/v1/held/{mailbox}/{key}":      map[string]any{"delete": heldDrop()},
			"/api/v1/status": map[string]any{"get": map[string]any{"summary": "Agent state of every mailbox (served_by: the serve instance holding its lease), expiry warnings, the console records that are failing (failing_records: kind, name, error), this serve's instance id (instance), the live serve instances on the store (instances: instance, this, last_heartbeat, heartbeat_age_seconds, started, mailboxes), and each sender's outbox queue (senders: name, state idle|sending|paced|throttled|over_budget, until, queued, rate, recipients_left, drain_seconds, drain)",
				"responses": map[string]any{"200": map[string]any{"description": "status"}, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}},
		},
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "a token from `mailgate admin token NAME`"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie},
			},
			"responses": map[string]any{"Unauthenticated": map[string]any{"description": "no session and no valid Bearer token"}},
			"schemas": map[string]any{
				"OutboxMessage": obj("id", "sender", "from", "state", "attempts", "last_error", "created_at", "recipients"),
				"Message":       obj("id", "mailbox", "key", "size", "received_at", "stored_at"),
				"Delivery":      obj("mailbox", "key", "message_id", "size", "sink_ref", "state", "delivered_at", "acknowledged_at"),
				"TestResult":    obj("name", "kind", "ok", "steps"),
				"HeldMessage":   obj("mailbox", "key", "uid", "message_id", "subject", "from", "size", "state", "permanent", "reason", "attempts", "first_attempt", "last_attempt", "next_attempt", "received_at"),
			},
		},
	}
	paths := doc["paths"].(map[string]any)
	for k, v := range proxyPaths() {
		paths[k] = v
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, kind := range config.Kinds {
		item := schemaName(kind)
		paths["/api/v1/"+kind], paths["/api/v1/"+kind+"/{name}"] = list(kind, item), one(kind, item)
		schemas[item], schemas[item+"Input"] = recordSchemas(kind)
	}
	for kind, summary := range map[string]string{
		"mailboxes": "Run the steps of mailgate test on a mailbox",
		"sinks":     "Check that a sink can take a message without delivering one (maildir writable, webhook reachable, command executable)",
		"senders":   "Run the steps of mailgate test on a sender (SMTP up to AUTH, or Graph's token and Mail.Send); nothing is sent",
		"profiles":  "Get a token for a profile, as mailgate test does",
	} {
		paths["/api/v1/"+kind+"/{name}/test"] = map[string]any{"post": map[string]any{"summary": summary,
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"responses": map[string]any{"200": map[string]any{"description": "the steps", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/TestResult"}}}},
				"404": map[string]any{"description": "no such " + singular(kind)}, "401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}}
	}
	for _, kind := range config.Kinds {
		create, change := write(kind, schemaName(kind))
		for k, v := range create {
			paths["/api/v1/"+kind].(map[string]any)[k] = v
		}
		for k, v := range change {
			paths["/api/v1/"+kind+"/{name}"].(map[string]any)[k] = v
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// heldParam is a path parameter of the held-message routes ({key} is the
// message's key, path-escaped: it holds slashes).
func heldParam(name string) map[string]any {
	return map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
}

func heldDrop() map[string]any {
	return map[string]any{"summary": "Let a held message go: never fetched again, left on the server as it is (its after-action is not applied)",
		"parameters": []any{heldParam("mailbox"), heldParam("key")},
		"responses": map[string]any{"200": map[string]any{"description": "{\"dropped\": 1}"}, "404": map[string]any{"description": "no such held message"},
			"401": map[string]any{"$ref": "#/components/responses/Unauthenticated"}}}
}

// outboxList adds the outbox list's filters (?state=queued&sender=noreply)
// to its description.
func outboxList(op map[string]any) map[string]any {
	q := func(name, desc string, enum ...string) map[string]any {
		schema := map[string]any{"type": "string"}
		if len(enum) > 0 {
			schema["enum"] = enum
		}
		return map[string]any{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
	}
	op["get"].(map[string]any)["parameters"] = []any{
		q("state", "only messages in this state", "queued", "sending", "sent", "failed"),
		q("sender", "only messages of this sender"),
	}
	return op
}
