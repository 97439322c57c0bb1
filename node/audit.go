package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/edgesplit/edgesplit/node/access"
	"gopkg.in/natefinch/lumberjack.v2"
)

// AuditConfig says where the audit trail goes.
type AuditConfig struct {
	// Path is a file (rotated at MaxMB, keeping MaxBackups old files),
	// or "-" for standard output.
	Path              string
	MaxMB, MaxBackups int
}

// NewAuditLog returns a logger writing the audit trail as JSON lines
// (slog's JSON handler: time, level, msg, then the record's fields) and the
// closer of its file. Requests are msg "request"; security events are msg
// "refused" with a reason.
func NewAuditLog(c AuditConfig) (*slog.Logger, io.Closer, error) {
	var w io.WriteCloser
	switch c.Path {
	case "":
		return nil, nil, fmt.Errorf("node: audit log: no path")
	case "-":
		w = nopCloser{os.Stdout}
	default:
		if c.MaxMB <= 0 {
			c.MaxMB = 100
		}
		if c.MaxBackups <= 0 {
			c.MaxBackups = 10
		}
		f, err := os.OpenFile(c.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("node: audit log: %w", err)
		}
		f.Close()
		w = &lumberjack.Logger{Filename: c.Path, MaxSize: c.MaxMB, MaxBackups: c.MaxBackups}
	}
	return slog.New(slog.NewJSONHandler(w, nil)), w, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// isRefusal reports whether an API status is a refusal before any work
// (no or bad credentials, a missing scope, over a rate or the in-flight cap).
func isRefusal(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusUnauthorized || code == http.StatusForbidden
}

// auditRequest records one answered or refused client request.
func (n *Node) auditRequest(r *http.Request, code int, model string, res *InferResult, msg string) {
	a := n.cfg.Audit
	if a == nil {
		return
	}
	id, _ := access.FromContext(r.Context())
	attrs := []slog.Attr{slog.String("client", id.Name), slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path),
		slog.String("query", r.URL.RawQuery), slog.Int("status", code), slog.String("model", model)}
	if res != nil {
		attrs = append(attrs, slog.String("model_version", res.ModelVersion), slog.String("policy", res.Policy),
			slog.Int("cut", res.Cut), slog.String("codec", res.Codec), slog.String("cloud", res.Cloud),
			slog.Int64("bytes_sent", res.BytesSent), slog.String("fidelity", res.Accuracy.Fidelity.String()),
			slog.Float64("total_ms", ms(res.Measured.Total)), slog.String("fallback", res.Fallback))
	}
	if msg != "" {
		attrs = append(attrs, slog.String("error", msg))
	}
	event := "request"
	if isRefusal(code) {
		event = "refused"
	}
	a.LogAttrs(context.Background(), slog.LevelInfo, event, attrs...)
}
