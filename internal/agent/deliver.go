package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/sink"
)

// maxQueued is the largest message the fetch loop reads into memory and
// queues for the delivery goroutine; larger ones stream from the network
// into the sink once the queue is empty, so a run never holds more than
// queueDepth × maxQueued bytes of mail.
const (
	maxQueued  = 256 << 10
	queueDepth = 32
)

// errSinkFailed stops a fetch after the delivery goroutine failed; the
// failure itself is what wait returns.
var errSinkFailed = errors.New("agent: the sink failed")

// deliverer hands a batch's fetched messages to the sink in order. Small
// messages are read into memory by the fetch loop and written by a second
// goroutine, so the sink's work (creating and writing a file, a webhook
// call) overlaps reading the next message from the server; large ones
// stream straight through after the queue drained. Entries and delivered
// items are read with take after wait.
type deliverer struct {
	ctx context.Context
	mb  *Mailbox
	st  *Stats // Fetched by the fetch loop; Failed, Delivered, Duplicates, Held here
	now time.Time
	// held is what the ledger knows of refused messages (for their
	// attempt counts); nil is none
	held map[string]HeldMessage

	jobs chan job
	idle sync.WaitGroup // queued jobs not yet done
	bufs sync.Pool      // *bytes.Buffer
	done chan struct{}  // the goroutine ended

	// used by one goroutine at a time: the delivery goroutine while jobs
	// are queued, the fetch loop after wait
	copyBuf   []byte
	tap       headerTap
	err       error
	entries   []LedgerEntry
	delivered []mailbox.Item
	refused   []HeldMessage

	// watch lists keys whose fetch is noted in seen (by the fetch loop)
	watch, seen map[string]bool
}

type job struct {
	it  mailbox.Item
	buf *bytes.Buffer
}

func newDeliverer(ctx context.Context, mb *Mailbox, st *Stats, now time.Time, held map[string]HeldMessage) *deliverer {
	d := &deliverer{ctx: ctx, mb: mb, st: st, now: now, held: held, jobs: make(chan job, queueDepth), done: make(chan struct{}),
		copyBuf: make([]byte, 32<<10)} // io.Copy would allocate 32 KB per message
	go d.loop()
	return d
}

func (d *deliverer) loop() {
	defer close(d.done)
	for j := range d.jobs {
		if d.err == nil {
			d.err = d.deliverNow(j.it, j.buf)
		}
		j.buf.Reset()
		d.bufs.Put(j.buf)
		d.idle.Done()
	}
}

// deliver is the fetch callback: it queues a small message or, after the
// queue drained, streams a large one. After the sink failed it returns
// errSinkFailed, which stops the fetch.
func (d *deliverer) deliver(it mailbox.Item, r io.Reader) error {
	d.st.Fetched++
	if d.watch[it.Key] {
		if d.seen == nil {
			d.seen = map[string]bool{}
		}
		d.seen[it.Key] = true
	}
	if it.Size <= 0 || it.Size > maxQueued {
		return d.streamNow(it, r)
	}
	buf, _ := d.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = bytes.NewBuffer(make([]byte, 0, 16<<10))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, maxQueued+1))
	if err != nil {
		buf.Reset()
		d.bufs.Put(buf)
		return fmt.Errorf("agent: reading %s: %w", it.Key, err)
	}
	if n > maxQueued {
		// larger than the server said: stream the rest once the queue
		// drained, never holding it in memory
		defer func() { buf.Reset(); d.bufs.Put(buf) }()
		return d.streamNow(it, io.MultiReader(bytes.NewReader(buf.Bytes()), r))
	}
	d.idle.Add(1)
	select {
	case d.jobs <- job{it: it, buf: buf}:
	case <-d.ctx.Done():
		d.idle.Done()
		return d.ctx.Err()
	}
	return nil
}

// streamNow waits for the queue to drain, then delivers from r in the
// fetch loop.
func (d *deliverer) streamNow(it mailbox.Item, r io.Reader) error {
	if err := d.wait(); err != nil {
		return errSinkFailed
	}
	if d.err = d.deliverNow(it, r); d.err != nil {
		return errSinkFailed
	}
	return nil
}

// deliverNow writes one message into the sink and commits it. A
// refusal the sink classified is recorded (see refuse); nil is returned
// when the message was set aside, so the run goes on with the next one.
func (d *deliverer) deliverNow(it mailbox.Item, r io.Reader) error {
	mb := d.mb
	d.tap.reset(r)
	dl, err := mb.Sink.Begin(d.ctx, sink.Message{Mailbox: mb.Name, Key: it.Key, Size: it.Size, ReceivedAt: it.Date})
	if err != nil {
		// read it through, for its header and so the fetch may go on
		_, _ = io.CopyBuffer(io.Discard, &d.tap, d.copyBuf)
		return d.refuse(it, err)
	}
	if _, err := io.CopyBuffer(dl, &d.tap, d.copyBuf); err != nil {
		dl.Abort()
		return d.refuse(it, fmt.Errorf("agent: copying %s to the sink: %w", it.Key, err))
	}
	rc, err := dl.Commit(d.ctx)
	if err != nil {
		dl.Abort()
		return d.refuse(it, err)
	}
	if rc.Duplicate {
		d.st.Duplicates++
	} else {
		d.st.Delivered++
	}
	if it.MessageID == "" {
		it.MessageID = d.tap.messageID()
	}
	d.entries = append(d.entries, LedgerEntry{Key: it.Key, UID: it.UID, MessageID: it.MessageID, Size: it.Size, Date: it.Date, SinkRef: rc.Ref})
	d.delivered = append(d.delivered, it)
	return nil
}

// refuse records a failed delivery. A failure that is not the sink's
// refusal (*sink.Error), or that came from the run being stopped, is
// returned as is: the run stops and the message comes again. A permanent
// refusal sets the message aside as held; a temporary one counts an
// attempt and stops the run, until the maxTemporary-th in a row sets it
// aside as deferred (retried at NextAt, with a growing delay).
func (d *deliverer) refuse(it mailbox.Item, err error) error {
	d.st.Failed++
	var se *sink.Error
	if !errors.As(err, &se) || d.ctx.Err() != nil {
		return err
	}
	if se.Permanent {
		d.st.RefusedPermanent++
	} else {
		d.st.RefusedTemporary++
	}
	h := d.held[it.Key]
	h.Mailbox, h.Key, h.UID, h.Size, h.Date = d.mb.Name, it.Key, it.UID, it.Size, it.Date
	if h.MessageID = it.MessageID; h.MessageID == "" {
		h.MessageID = d.tap.messageID()
	}
	if subject, from := d.tap.subjectFrom(); subject != "" || from != "" {
		h.Subject, h.From = subject, from
	}
	h.Attempts++
	h.LastAt, h.NextAt = d.now, time.Time{}
	if h.FirstAt.IsZero() {
		h.FirstAt = d.now
	}
	h.Permanent, h.Reason = se.Permanent, err.Error()
	if len(h.Reason) > 1000 {
		h.Reason = strings.ToValidUTF8(h.Reason[:1000], "")
	}
	switch {
	case se.Permanent:
		h.State = HeldRefused
		d.st.Held++
		err = nil
	case h.Attempts >= maxTemporary:
		h.State, h.NextAt = HeldDeferred, d.now.Add(deferDelay(h.Attempts))
		d.st.Held++
		err = nil
	default:
		h.State = HeldFailing
	}
	d.refused = append(d.refused, h)
	return err
}

// deferDelay is how long a message refused temporarily attempts times
// waits before its next automatic attempt: 1 minute after the
// maxTemporary-th refusal, doubling to at most an hour.
func deferDelay(attempts int) time.Duration {
	return min(time.Minute<<min(max(attempts-maxTemporary, 0), 6), time.Hour)
}

// wait returns once every queued message was handed to the sink, with the
// sink's first failure.
func (d *deliverer) wait() error {
	d.idle.Wait()
	return d.err
}

// take returns what was committed and what was refused since the last
// take (call after wait).
func (d *deliverer) take() ([]LedgerEntry, []mailbox.Item, []HeldMessage) {
	e, it, r := d.entries, d.delivered, d.refused
	d.entries, d.delivered, d.refused = nil, nil, nil
	return e, it, r
}

// close ends the delivery goroutine.
func (d *deliverer) close() {
	close(d.jobs)
	<-d.done
}
