// streamclient: a remotecommand (exec) client over SPDY/3.1, written for
// cric's tests on Debian's docker/spdystream alone (Debian packages no
// Kubernetes client library). It speaks what client-go's remotecommand
// speaks: an HTTP/1.1 upgrade to SPDY/3.1 with X-Stream-Protocol-Version,
// then one stream per streamType (error first; stdin, stdout, stderr,
// resize as asked), stdin copied from our stdin, stdout and stderr to ours,
// and the status read from the error stream (v4: a metav1.Status as JSON).
//
// Output: the command's stdout and stderr on ours; the last line on stderr
// is "STATUS <the error stream's text>". Exit status: the command's (from
// the v4 status), 0 on Success, 100 for a protocol error, 101 when the
// server refused (non-101 answer: its code is printed as "HTTP <code>").
//
// With -portforward "PORT:BYTES,PORT:BYTES;PORT:BYTES" it speaks the
// portforward protocol instead (portforward.k8s.io, as client-go's
// portforward does): per connection an error stream then a data stream,
// both with the port and a requestID header; BYTES pseudo-random bytes
// are sent on data while what comes back is read; once as many came back
// (an echo server), the data stream is closed (FIN) and its end and the
// error stream's text are awaited. Connections of a group (separated by
// commas) run at once, groups (separated by semicolons) one after the
// other, all in one session. One line per connection:
//
//	CONN <n> PORT <p> SENT <bytes> GOT <bytes> MATCH <bool> EOF <bool> ERROR "<text>"
//
// Exit status 0 when every connection got its bytes back with no error
// text, 1 otherwise (100, 101 as above). With -one-way the server is a
// sink instead: once it has read BYTES it answers their count as decimal
// text (not at the FIN: containerd 1.6 ends the whole connection at the
// client's FIN, no half-close); GOT and MATCH are of that answer.
// With -timing a line "TIME <n> <ms>" on stderr per connection: from the
// first byte sent until all came back (one-way: until the count came).
//
// An https URL is dialled with TLS, the server's certificate checked
// against -ca's (or the system's).
//
// An item PORT:data (or PORT:error) opens only that stream of its
// connection and waits (up to 60 s) for the server to end it: its line has
// EOF true and as ERROR what came on it, with " [reset]" when the server
// reset it.
//
// With -loop it times exec round trips for make bench (one process, so
// no Go start-up in the figures): one URL (an Exec answer) per line on
// stdin, each used as -url with the error and stdout streams alone; per
// URL one line on stdout, "RT <ms> STATUS <error stream's text>" (ms:
// from the dial to the status read) or "ERROR <quoted text>"; exit
// status 1 when one failed.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/spdystream"
)

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func fail(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

type status struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details *struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func main() {
	rawURL := flag.String("url", "", "the URL Exec answered")
	stdin := flag.Bool("stdin", false, "send our stdin")
	stdout := flag.Bool("stdout", true, "receive stdout")
	stderr := flag.Bool("stderr", false, "receive stderr")
	tty := flag.Bool("tty", false, "open a resize stream")
	sizes := flag.String("resize", "", "WxH[,WxH...]: resize messages sent at the start")
	protos := flag.String("protocols", "v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io", "offered, in order")
	garbage := flag.Bool("garbage", false, "after the upgrade, send garbage and wait for the close")
	hangup := flag.String("hangup-after", "", "close the connection once stdout has shown this text")
	pf := flag.String("portforward", "", "PORT:BYTES,...;...: port-forward connections (see above)")
	flag.BoolVar(&dataFirst, "data-first", false, "port-forward: open the data stream before the error stream")
	flag.BoolVar(&oneWay, "one-way", false, "port-forward: send to a sink that answers the count (see above)")
	flag.BoolVar(&timing, "timing", false, "port-forward: a TIME line per connection on stderr (see above)")
	loop := flag.Bool("loop", false, "exec round trips, one per URL read from our stdin (see above)")
	flag.StringVar(&caFile, "ca", "", "https URLs: the PEM certificate(s) to trust (else the system's)")
	flag.Parse()
	if *pf != "" {
		protosSet := false
		flag.Visit(func(f *flag.Flag) { protosSet = protosSet || f.Name == "protocols" })
		if !protosSet {
			*protos = "portforward.k8s.io"
		}
	}

	if *loop {
		os.Exit(execLoop(*protos))
	}

	conn, br, resp, err := upgrade(*rawURL, *protos)
	if err != nil {
		fail(100, "%v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(os.Stderr, "HTTP %d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
		os.Exit(101)
	}
	fmt.Fprintf(os.Stderr, "PROTOCOL %s\n", resp.Header.Get("X-Stream-Protocol-Version"))
	bc := &bufConn{Conn: conn, r: br}
	if *garbage {
		conn.Write([]byte("\x80\x03\x00\x01\xff\xff\xff\xffthis is not spdy at all"))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, bc)
		if err != nil {
			fail(100, "not closed: %v", err)
		}
		fmt.Fprintf(os.Stderr, "CLOSED\n")
		os.Exit(0)
	}
	sc, err := spdystream.NewConnection(bc, false)
	if err != nil {
		fail(100, "spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	if *pf != "" {
		code := portForward(sc, *pf)
		sc.Close()
		os.Exit(code)
	}

	open := func(t string) *spdystream.Stream {
		h := http.Header{}
		h.Set("streamType", t)
		s, err := sc.CreateStream(h, nil, false)
		if err != nil {
			fail(100, "create %s: %v", t, err)
		}
		if err := s.WaitTimeout(30 * time.Second); err != nil {
			fail(100, "reply to %s: %v", t, err)
		}
		return s
	}
	errStream := open("error")
	errStream.Close() // we never write on it
	var wg sync.WaitGroup
	if *stdin {
		s := open("stdin")
		go func() {
			io.Copy(s, os.Stdin)
			s.Close()
		}()
	}
	copyOut := func(s *spdystream.Stream, w io.Writer, watch bool) {
		defer wg.Done()
		if !watch || *hangup == "" {
			io.Copy(w, s)
			return
		}
		buf := make([]byte, 4096)
		seen := ""
		for {
			n, err := s.Read(buf)
			w.Write(buf[:n])
			seen += string(buf[:n])
			if strings.Contains(seen, *hangup) {
				conn.Close()
				fmt.Fprintf(os.Stderr, "HUNG UP\n")
				os.Exit(0)
			}
			if err != nil {
				return
			}
		}
	}
	if *stdout {
		wg.Add(1)
		go copyOut(open("stdout"), os.Stdout, true)
	}
	if *stderr {
		wg.Add(1)
		go copyOut(open("stderr"), os.Stderr, false)
	}
	if *tty {
		s := open("resize")
		for _, sz := range strings.Split(*sizes, ",") {
			var w, h int
			if _, err := fmt.Sscanf(sz, "%dx%d", &w, &h); err == nil {
				b, _ := json.Marshal(map[string]int{"Width": w, "Height": h})
				s.Write(b)
			}
		}
	}
	msg, _ := io.ReadAll(errStream)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "STATUS %s\n", string(msg))
	sc.Close()
	if len(msg) == 0 {
		os.Exit(0)
	}
	var st status
	if err := json.Unmarshal(msg, &st); err != nil {
		os.Exit(1) // v1-v3: the text of an error
	}
	if st.Status == "Success" {
		os.Exit(0)
	}
	if st.Reason == "NonZeroExitCode" && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Reason == "ExitCode" {
				var code int
				fmt.Sscanf(c.Message, "%d", &code)
				os.Exit(code)
			}
		}
	}
	os.Exit(1)
}

// caFile is -ca: the certificates an https URL's server is checked against.
var caFile string

// dial connects to u's host: TCP, and TLS for https (the server's
// certificate checked against -ca, for the URL's host).
func dial(u *url.URL) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if u.Scheme != "https" {
		return d.Dial("tcp", u.Host)
	}
	cfg := &tls.Config{ServerName: u.Hostname()}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
	}
	return tls.DialWithDialer(d, "tcp", u.Host, cfg)
}

// upgrade dials rawURL's host and asks for SPDY/3.1 offering protos (comma
// separated): the connection, its reader (it may hold the first frames)
// and the answer.
func upgrade(rawURL, protos string) (net.Conn, *bufio.Reader, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("url: %v", err)
	}
	conn, err := dial(u)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dial: %v", err)
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n", u.RequestURI(), u.Host)
	for _, p := range strings.Split(protos, ",") {
		if p != "" {
			req += "X-Stream-Protocol-Version: " + p + "\r\n"
		}
	}
	req += "Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("write: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("response: %v", err)
	}
	return conn, br, resp, nil
}

// execLoop is the -loop mode (see the top): one exec session per URL on
// our stdin, in this one process. Answers the exit status.
func execLoop(protos string) int {
	in := bufio.NewScanner(os.Stdin)
	code := 0
	for in.Scan() {
		u := strings.TrimSpace(in.Text())
		if u == "" {
			continue
		}
		t := time.Now()
		st, err := execOnce(u, protos)
		ms := float64(time.Since(t).Microseconds()) / 1000
		if err != nil {
			fmt.Printf("ERROR %q\n", err.Error())
			code = 1
			continue
		}
		fmt.Printf("RT %.3f STATUS %s\n", ms, st)
	}
	return code
}

// execOnce: upgrade, the error and stdout streams, stdout read to its end,
// the error stream's text (the status) returned.
func execOnce(rawURL, protos string) (string, error) {
	conn, br, resp, err := upgrade(rawURL, protos)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	sc, err := spdystream.NewConnection(&bufConn{Conn: conn, r: br}, false)
	if err != nil {
		return "", fmt.Errorf("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	defer sc.Close()
	open := func(t string) (*spdystream.Stream, error) {
		h := http.Header{}
		h.Set("streamType", t)
		s, err := sc.CreateStream(h, nil, false)
		if err == nil {
			err = s.WaitTimeout(30 * time.Second)
		}
		if err != nil {
			return nil, fmt.Errorf("%s stream: %v", t, err)
		}
		return s, nil
	}
	es, err := open("error")
	if err != nil {
		return "", err
	}
	es.Close() // we never write on it
	out, err := open("stdout")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, out); err != nil {
		return "", fmt.Errorf("stdout: %v", err)
	}
	msg, err := io.ReadAll(es)
	if err != nil {
		return "", fmt.Errorf("error stream: %v", err)
	}
	return string(msg), nil
}

// dataFirst: open each connection's data stream first (client-go opens
// the error stream first; the server must take either order).
var dataFirst bool

// oneWay, timing: -one-way and -timing (see the top).
var oneWay, timing bool

// portForward runs the connections of spec (see the top) and answers the
// exit status.
func portForward(sc *spdystream.Connection, spec string) int {
	code := 0
	next := 0
	for _, group := range strings.Split(spec, ";") {
		items := strings.Split(group, ",")
		lines := make([]string, len(items))
		oks := make([]bool, len(items))
		var wg sync.WaitGroup
		for i, item := range items {
			var port, n int
			lone := ""
			if k := strings.LastIndex(item, ":"); k > 0 && (item[k+1:] == "data" || item[k+1:] == "error") {
				lone = item[k+1:]
				item = item[:k] + ":0"
			}
			if _, err := fmt.Sscanf(item, "%d:%d", &port, &n); err != nil {
				fail(100, "portforward: bad item %q", item)
			}
			wg.Add(1)
			go func(i, id, port, n int) {
				defer wg.Done()
				lines[i], oks[i] = forwardOne(sc, id, port, n, lone)
			}(i, next, port, n)
			next++
		}
		wg.Wait()
		for i := range lines {
			fmt.Println(lines[i])
			if !oks[i] {
				code = 1
			}
		}
	}
	return code
}

func forwardOne(sc *spdystream.Connection, id, port, n int, lone string) (string, bool) {
	line := func(sent, got int, match, eof bool, errText string) (string, bool) {
		return fmt.Sprintf("CONN %d PORT %d SENT %d GOT %d MATCH %v EOF %v ERROR %q",
			id, port, sent, got, match, eof, errText), match && eof && errText == ""
	}
	open := func(t string) (*spdystream.Stream, error) {
		h := http.Header{}
		h.Set("streamType", t)
		h.Set("port", strconv.Itoa(port))
		h.Set("requestID", strconv.Itoa(id))
		s, err := sc.CreateStream(h, nil, false)
		if err == nil {
			err = s.WaitTimeout(30 * time.Second)
		}
		return s, err
	}
	if lone != "" {
		return forwardLone(open, line, lone)
	}
	var es, ds *spdystream.Stream
	var err error
	if dataFirst {
		ds, err = open("data")
	}
	if err == nil {
		es, err = open("error")
	}
	if err == nil && !dataFirst {
		ds, err = open("data")
	}
	if err != nil {
		return line(0, 0, false, false, "open the streams: "+err.Error())
	}
	es.Close() // we never write on it
	errText := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(es)
		errText <- string(b)
	}()
	data := make([]byte, n)
	rand.New(rand.NewSource(int64(id) + 1)).Read(data)
	expect := data
	if oneWay {
		expect = []byte(strconv.Itoa(n))
	}
	start := time.Now()
	written := make(chan struct{})
	go func() {
		defer close(written)
		for off := 0; off < n; off += 32 * 1024 {
			end := off + 32*1024
			if end > n {
				end = n
			}
			if _, err := ds.Write(data[off:end]); err != nil {
				return
			}
		}
	}()
	// What comes back, up to as much as was sent; then the FIN and the
	// end (the rest, if any, counts too).
	got := make([]byte, 0, len(expect))
	buf := make([]byte, 64*1024)
	eof := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < len(expect) {
			k, err := ds.Read(buf)
			got = append(got, buf[:k]...)
			if err != nil {
				eof = true
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return line(n, len(got), false, false, "timed out reading the echo")
	}
	if timing {
		fmt.Fprintf(os.Stderr, "TIME %d %.3f\n", id, float64(time.Since(start).Microseconds())/1000)
	}
	<-written
	ds.Close()
	if !eof {
		rest := make(chan bool, 1)
		go func() {
			for {
				k, err := ds.Read(buf)
				got = append(got, buf[:k]...)
				if err != nil {
					rest <- true
					return
				}
			}
		}()
		select {
		case eof = <-rest:
		case <-time.After(15 * time.Second):
		}
	}
	text := "(no end of the error stream)"
	select {
	case text = <-errText:
	case <-time.After(15 * time.Second):
	}
	return line(n, len(got), bytes.Equal(got, expect), eof, text)
}

// forwardLone is a -lone connection: one stream, read until the server
// ends it.
func forwardLone(open func(string) (*spdystream.Stream, error),
	line func(int, int, bool, bool, string) (string, bool), lone string) (string, bool) {
	st, err := open(lone)
	if err != nil {
		return line(0, 0, false, false, "open the stream: "+err.Error())
	}
	text := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(st)
		t := string(b)
		if st.IsFinished() {
			t += " [reset]"
		}
		text <- t
	}()
	select {
	case t := <-text:
		return line(0, 0, false, true, t)
	case <-time.After(60 * time.Second):
		return line(0, 0, false, false, "not ended")
	}
}
