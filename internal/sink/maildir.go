package sink

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaildirOptions configure NewMaildir.
type MaildirOptions struct {
	// Path is the maildir (tmp/, new/ and cur/ are created, mode 0700).
	Path string
	// Sync is "batch" (default: Commit stages the file in tmp/; Sync makes
	// every staged file durable with one syncfs(2) of the filesystem and
	// only then renames them into new/) or "file" (fsync and rename at each
	// Commit).
	Sync string
}

// Maildir is a maildir sink (https://cr.yp.to/proto/maildir.html): one
// file per message, the bytes exactly as received. File names embed a hash
// of the idempotency key, so the set of delivered keys is rebuilt from new/
// and cur/ at open (also after a mail reader moved files into cur/), and a
// key delivered before is recognised as a duplicate. What another process
// delivers into the same maildir later is known after Rescan.
type Maildir struct {
	dir   string
	batch bool
	host  string
	pid   int
	// seq numbers the files of this handle; it starts at a random
	// point, so that two handles of one process on one maildir (a reload
	// reopens it while kept agents still use the old one) write distinct
	// names within a second
	seq atomic.Uint64

	// syncMu serialises Sync and Close; mu guards the maps and order and
	// is not held across syncfs and renames, so deliveries of the next
	// batch go on while a batch is made durable.
	syncMu   sync.Mutex
	newDirty bool // renames into new/ not yet known durable (guarded by syncMu)
	// scanMu serialises reads of new/ and cur/ (Rescan); scanned is when
	// the last complete one began (the open's at first)
	scanMu    sync.Mutex
	scanned   time.Time
	mu        sync.Mutex
	delivered map[string]string // key hash → path in new/ or cur/
	staged    map[string]*staged
	order     []*staged

	bufs sync.Pool // *bufio.Writer, 64 KB each, reused across deliveries
}

type staged struct {
	hash, tmp, final string
}

// MakeMaildir creates the maildir's tmp/, new/ and cur/ (0700) as
// NewMaildir does, without reading what they hold: what a check that the
// maildir can be opened needs.
func MakeMaildir(path string) error {
	if path == "" {
		return errors.New("sink: maildir: no path")
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(path, sub), 0o700); err != nil {
			return fmt.Errorf("sink: maildir: %w", err)
		}
	}
	return nil
}

// NewMaildir opens (creating) the maildir and indexes what it holds. Stale
// files in tmp/ (older than 36 hours, the maildir rule, and this sink's own
// leftovers of a crash) are removed.
func NewMaildir(o MaildirOptions) (*Maildir, error) {
	if o.Path == "" {
		return nil, errors.New("sink: maildir: no path")
	}
	switch o.Sync {
	case "", "batch", "file":
	default:
		return nil, fmt.Errorf("sink: maildir: sync %q: want batch or file", o.Sync)
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	if host == "" {
		host = "localhost"
	}
	m := &Maildir{dir: o.Path, batch: o.Sync != "file", host: host, pid: os.Getpid(),
		delivered: map[string]string{}, staged: map[string]*staged{}}
	m.seq.Store(uint64(rand.Uint32()))
	if err := MakeMaildir(o.Path); err != nil {
		return nil, err
	}
	m.scanned = time.Now()
	found, err := m.scan(context.Background())
	if err != nil {
		return nil, fmt.Errorf("sink: maildir: %w", err)
	}
	m.delivered = found
	tmp, err := os.ReadDir(filepath.Join(o.Path, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("sink: maildir: %w", err)
	}
	for _, e := range tmp {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if m.leftover(e.Name(), info.ModTime()) {
			_ = os.Remove(filepath.Join(o.Path, "tmp", e.Name()))
		}
	}
	return m, nil
}

// leftover reports whether a file in tmp/ is garbage: older than 36 hours
// (the maildir rule), or one of this sink's names written by a process of
// this host that is gone (a crash's). A file of a live process (another
// serve instance sharing the maildir, another handle of this process after
// a reload) is staged for that one's next Sync and stays; so does, until
// the 36 hours, one of another host or of a process with this pid.
func (m *Maildir) leftover(name string, mod time.Time) bool {
	if time.Since(mod) > 36*time.Hour {
		return true
	}
	if keyHashOf(name) == "" {
		return false
	}
	parts := strings.SplitN(name, ".", 4)
	pidText, _, _ := strings.Cut(parts[1], "_")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == m.pid || parts[3] != m.host {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// scan reads the key hashes of the files in new/ and then cur/: in that
// order, a file a mail reader moves from new/ to cur/ meanwhile is seen
// in one or the other.
func (m *Maildir) scan(ctx context.Context) (map[string]string, error) {
	found := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(m.dir, sub)
		f, err := os.Open(dir)
		if err != nil {
			return nil, err
		}
		for {
			if err := ctx.Err(); err != nil {
				f.Close()
				return nil, err
			}
			names, err := f.Readdirnames(4096)
			for _, name := range names {
				if h := keyHashOf(name); h != "" {
					found[h] = filepath.Join(dir, name)
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, err
			}
		}
		f.Close()
	}
	return found, nil
}

// Rescan reads new/ and cur/ again and adds the keys it finds to those the
// sink knows, so that a message another process (another serve instance
// sharing the maildir) delivered after this sink was opened is recognised
// as a duplicate. It reads the directories only if no read began after
// since (the open's or an earlier Rescan's): callers pass the moment they
// took a mailbox over, and the takeovers of one moment cost one read.
// Rescan is not on the delivery path: Begin consults only the memory.
func (m *Maildir) Rescan(ctx context.Context, since time.Time) error {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	if m.scanned.After(since) {
		return nil
	}
	began := time.Now()
	found, err := m.scan(ctx)
	if err != nil {
		return &Error{Sink: "maildir", Err: fmt.Errorf("rescan: %w", err)}
	}
	m.mu.Lock()
	for h, p := range found {
		if _, ok := m.delivered[h]; !ok {
			m.delivered[h] = p
		}
	}
	m.mu.Unlock()
	m.scanned = began
	return nil
}

// keyHash is the first 16 hex digits of SHA-256(key).
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// keyHashOf extracts the key hash from one of our file names:
// <seconds>.<pid>_<seq>.mg<hash>.<host>[:2,flags]; "" for other files.
func keyHashOf(name string) string {
	parts := strings.SplitN(name, ".", 4)
	if len(parts) < 4 || !strings.HasPrefix(parts[2], "mg") || len(parts[2]) != 18 {
		return ""
	}
	h := parts[2][2:]
	if _, err := hex.DecodeString(h); err != nil {
		return ""
	}
	return h
}

// Begin starts writing a message into tmp/.
func (m *Maildir) Begin(ctx context.Context, msg Message) (Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := keyHash(msg.Key)
	m.mu.Lock()
	if p, ok := m.delivered[h]; ok {
		m.mu.Unlock()
		return &dupDelivery{ref: p}, nil
	}
	if s, ok := m.staged[h]; ok {
		m.mu.Unlock()
		return &dupDelivery{ref: s.final}, nil
	}
	m.mu.Unlock()
	name := fmt.Sprintf("%d.%d_%d.mg%s.%s", time.Now().Unix(), m.pid, m.seq.Add(1), h, m.host)
	tmp := filepath.Join(m.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, &Error{Sink: "maildir", Err: err}
	}
	w, _ := m.bufs.Get().(*bufio.Writer)
	if w == nil {
		w = bufio.NewWriterSize(f, 64<<10)
	} else {
		w.Reset(f)
	}
	return &maildirDelivery{m: m, f: f, w: w, hash: h, tmp: tmp,
		final: filepath.Join(m.dir, "new", name)}, nil
}

type maildirDelivery struct {
	m          *Maildir
	f          *os.File
	w          *bufio.Writer
	hash       string
	tmp, final string
	done       bool
	err        error
}

func (d *maildirDelivery) Write(p []byte) (int, error) {
	if d.done {
		return 0, errors.New("sink: maildir: write after commit or abort")
	}
	n, err := d.w.Write(p)
	if err != nil {
		d.err = err
	}
	return n, err
}

func (d *maildirDelivery) Commit(ctx context.Context) (Receipt, error) {
	if d.done {
		return Receipt{}, errors.New("sink: maildir: commit after commit or abort")
	}
	if d.err != nil {
		return Receipt{}, &Error{Sink: "maildir", Err: d.err}
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, &Error{Sink: "maildir", Err: err}
	}
	if err := d.w.Flush(); err != nil {
		d.Abort()
		return Receipt{}, &Error{Sink: "maildir", Err: err}
	}
	if !d.m.batch {
		if err := d.f.Sync(); err != nil {
			d.Abort()
			return Receipt{}, &Error{Sink: "maildir", Err: err}
		}
	}
	d.release()
	if err := d.f.Close(); err != nil {
		d.done = true
		os.Remove(d.tmp)
		return Receipt{}, &Error{Sink: "maildir", Err: err}
	}
	d.done = true
	m := d.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.delivered[d.hash]; ok { // a concurrent delivery of the same key won
		os.Remove(d.tmp)
		return Receipt{Duplicate: true, Ref: p}, nil
	}
	if s, ok := m.staged[d.hash]; ok {
		os.Remove(d.tmp)
		return Receipt{Duplicate: true, Ref: s.final}, nil
	}
	if !m.batch {
		if err := renameNew(d.tmp, d.final); err != nil {
			os.Remove(d.tmp)
			return Receipt{}, &Error{Sink: "maildir", Err: err}
		}
		if err := syncDir(filepath.Join(m.dir, "new")); err != nil {
			return Receipt{}, &Error{Sink: "maildir", Err: err}
		}
		m.delivered[d.hash] = d.final
		return Receipt{Ref: d.final}, nil
	}
	s := &staged{hash: d.hash, tmp: d.tmp, final: d.final}
	m.staged[d.hash] = s
	m.order = append(m.order, s)
	return Receipt{Ref: d.final}, nil
}

// release returns the write buffer to the pool.
func (d *maildirDelivery) release() {
	if d.w != nil {
		d.w.Reset(nil)
		d.m.bufs.Put(d.w)
		d.w = nil
	}
}

func (d *maildirDelivery) Abort() error {
	if d.done {
		return nil
	}
	d.done = true
	d.release()
	d.f.Close()
	if err := os.Remove(d.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sync makes every message committed before the call durable (one syncfs
// of the maildir's filesystem on Linux, which flushes the files' data and
// metadata), then renames them into new/ and fsyncs new/. A file never
// appears in new/ before its bytes are on disk. Deliveries may go on
// while Sync runs; what they commit waits for the next Sync.
func (m *Maildir) Sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	batch := m.order
	m.order = nil
	m.mu.Unlock()
	if len(batch) == 0 {
		if m.newDirty {
			if err := syncDir(filepath.Join(m.dir, "new")); err != nil {
				return &Error{Sink: "maildir", Err: err}
			}
			m.newDirty = false
		}
		return nil
	}
	// on failure the unfinished part goes back in front of what was
	// committed meanwhile, still staged
	requeue := func(rest []*staged) {
		m.mu.Lock()
		m.order = append(rest[:len(rest):len(rest)], m.order...)
		m.mu.Unlock()
	}
	if err := m.syncStaged(batch); err != nil {
		requeue(batch)
		return &Error{Sink: "maildir", Err: err}
	}
	for i, s := range batch {
		if err := renameNew(s.tmp, s.final); err != nil {
			// what was renamed is done; keep the rest staged, but forget
			// a file that is gone (removed by another hand): renaming it
			// would fail at every Sync; its message comes again
			m.moved(batch[:i])
			rest := batch[i:]
			if errors.Is(err, fs.ErrNotExist) {
				m.forget(s)
				rest = rest[1:]
			}
			requeue(rest)
			return &Error{Sink: "maildir", Err: err}
		}
	}
	if err := syncDir(filepath.Join(m.dir, "new")); err != nil {
		// renamed but new/ not known durable: the next Sync redoes the fsync
		m.newDirty = true
		m.moved(batch)
		return &Error{Sink: "maildir", Err: err}
	}
	m.newDirty = false
	m.moved(batch)
	return nil
}

// moved records staged messages that are now in new/.
func (m *Maildir) moved(batch []*staged) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range batch {
		m.delivered[s.hash] = s.final
		delete(m.staged, s.hash)
	}
}

// forget drops a staged message that will not reach new/.
func (m *Maildir) forget(s *staged) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.staged[s.hash] == s {
		delete(m.staged, s.hash)
	}
}

func (m *Maildir) syncStaged(batch []*staged) error {
	dir, err := os.Open(filepath.Join(m.dir, "tmp"))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := syncfs(dir); err == nil {
		return nil
	}
	for _, s := range batch { // no syncfs: one fsync per file
		f, err := os.Open(s.tmp)
		if errors.Is(err, fs.ErrNotExist) {
			continue // Sync's rename finds it gone and forgets it
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close forgets staged messages that were never synced (their tmp files
// are removed; the agent had not acknowledged them, so they come again).
func (m *Maildir) Close() error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.order {
		os.Remove(s.tmp)
		delete(m.staged, s.hash)
	}
	m.order = nil
	return nil
}

// Len returns how many delivered messages the maildir holds (for tests and
// status).
func (m *Maildir) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.delivered)
}

type dupDelivery struct{ ref string }

func (d *dupDelivery) Write(p []byte) (int, error) { return len(p), nil }
func (d *dupDelivery) Commit(context.Context) (Receipt, error) {
	return Receipt{Duplicate: true, Ref: d.ref}, nil
}
func (d *dupDelivery) Abort() error { return nil }
