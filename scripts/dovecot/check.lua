-- Dovecot Lua passdb: asks the Entra ID emulator whether the OAuth token
-- (handed over as the password by the xoauth2/oauthbearer mechanisms) may
-- open this mailbox, by Exchange Online's rules. The emulator decides.
local check_url = "CHECKURL" -- filled in by start.sh

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function auth_password_verify(req, pass)
  local body = "user=" .. urlencode(req.user) .. "&service=" .. urlencode(req.service) .. "&token=" .. urlencode(pass)
  local tmp = os.tmpname()
  local f = io.open(tmp, "w")
  f:write(body)
  f:close()
  local p = io.popen("curl -sS --max-time 10 --noproxy '*' --data-binary @" .. tmp .. " " .. check_url .. " 2>&1")
  local resp = p:read("*a")
  p:close()
  os.remove(tmp)
  if resp:find('"active":true', 1, true) then
    return dovecot.auth.PASSDB_RESULT_OK, ""
  end
  if resp:find('"active":false', 1, true) then
    req:log_info("mailgate-check: refused: " .. resp)
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, ""
  end
  req:log_error("mailgate-check: emulator unreachable: " .. resp)
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, ""
end

function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no lookups: only token checks"
end
