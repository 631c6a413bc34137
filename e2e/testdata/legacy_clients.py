"""Python's imaplib, poplib and smtplib through mailgate's proxy listeners.

legacy_clients.py CA IMAP_PORT POP3_PORT SMTP_PORT FROM TO

Every client logs in over STARTTLS, trusting only the test CA, with each
way of sending a password; the SMTP messages go to TO. Prints one line per
step and exits 1 on the first failure.
"""
import base64
import imaplib
import poplib
import smtplib
import ssl
import sys

ca, imap_port, pop3_port, smtp_port, sender, to = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
HOST = "localhost"


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def imap(how):
    m = imaplib.IMAP4(HOST, int(imap_port))
    m.starttls(ssl_context=ctx)
    if how == "LOGIN":
        m.login("scanner", "scan pw")
    else:
        m.authenticate("PLAIN", lambda _: b"\0scanner\0scan pw")
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK", (typ, data)
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and b"seed 1" in data[0][1], (typ, data)
    m.logout()
    print("imap", how, "ok", int(data and 1))


def imap_wrong():
    m = imaplib.IMAP4(HOST, int(imap_port))
    m.starttls(ssl_context=ctx)
    try:
        m.login("scanner", "wrong")
    except imaplib.IMAP4.error as e:
        print("imap wrong password refused:", e)
        return
    raise SystemExit("imap: a wrong password was accepted")


def pop3(how):
    p = poplib.POP3(HOST, int(pop3_port))
    p.stls(context=ctx)
    if how == "USER":
        p.user("scanner")
        p.pass_("scan pw")
    else:
        resp = p._shortcmd("AUTH PLAIN " + plain("scanner", "scan pw"))
        assert resp.startswith(b"+OK"), resp
    count, _ = p.stat()
    resp, lines, _ = p.retr(1)
    assert count > 0 and any(b"Message-ID: <seed-" in l for l in lines), (count, lines[:5])
    p.quit()
    print("pop3", how, "ok", count)


def smtp(how, from_addr, subject):
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@legacy.test>\r\n\r\nscanned page %s\r\n"
           % (from_addr, to, subject, subject, subject))
    s = smtplib.SMTP(HOST, int(smtp_port))
    s.starttls(context=ctx)
    s.ehlo()
    assert "PLAIN" in s.esmtp_features.get("auth", "") and "LOGIN" in s.esmtp_features.get("auth", ""), s.esmtp_features
    s.user, s.password = "sender", "sendpw"
    if how == "PLAIN":
        s.auth("PLAIN", s.auth_plain)
    else:
        s.auth("LOGIN", s.auth_login)
    try:
        s.sendmail(from_addr, [to], msg.encode())
    except smtplib.SMTPDataError as e:
        print("smtp", how, subject, "refused", e.smtp_code, e.smtp_error.decode())
        s.quit()
        return
    except smtplib.SMTPSenderRefused as e:
        print("smtp", how, subject, "refused", e.smtp_code, e.smtp_error.decode())
        s.quit()
        return
    s.quit()
    print("smtp", how, subject, "sent")


imap_wrong()
imap("LOGIN")
imap("AUTHENTICATE PLAIN")
pop3("USER")
pop3("AUTH PLAIN")
smtp("PLAIN", sender, "plain")
smtp("LOGIN", sender, "login")
smtp("PLAIN", "boss@contoso.example", "envelope")
