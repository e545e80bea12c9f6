package s3

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/backendtest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

var prefixSeq atomic.Int64

func TestConformance(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	var prefixes []string
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		// Every backend gets its own prefix in the shared bucket.
		prefix := fmt.Sprintf("repo%d/sub", prefixSeq.Add(1))
		prefixes = append(prefixes, prefix)
		b, err := New(context.Background(), srv.URL(bucket, prefix))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return b
	})
	// The listing test must have needed more than one page, or it did not
	// test pagination.
	maxPages := 0
	for _, prefix := range prefixes {
		p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{
			Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/data/")})
		pages := 0
		for p.HasMorePages() {
			if _, err := p.NextPage(context.Background()); err != nil {
				t.Fatal(err)
			}
			pages++
		}
		maxPages = max(maxPages, pages)
	}
	if maxPages < 2 {
		t.Errorf("no data listing needed more than %d page(s); pagination is untested", maxPages)
	}
}

func TestBucketRoot(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	b, err := New(ctx, srv.URL(bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	if err := b.Save(ctx, h, []byte("root")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, h); err != nil {
		t.Fatal(err)
	}
	// The key layout mirrors the local backend.
	if got, want := b.key(h), "data/"+h.Name[:2]+"/"+h.Name; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
	if err := b.Save(ctx, backend.Handle{Type: backend.Config}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx); err == nil {
		t.Error("Create at the bucket root with a config succeeded")
	}
}

func TestKeys(t *testing.T) {
	b := &Backend{bucket: "b", prefix: "p/q"}
	name := "abcdef0123"
	for h, want := range map[backend.Handle]string{
		{Type: backend.Config}:                "p/q/config",
		{Type: backend.Data, Name: name}:      "p/q/data/ab/abcdef0123",
		{Type: backend.Snapshot, Name: name}:  "p/q/snapshots/abcdef0123",
		{Type: backend.Key, Name: name}:       "p/q/keys/abcdef0123",
		{Type: backend.Lock, Name: name}:      "p/q/locks/abcdef0123",
		{Type: backend.DataIndex, Name: name}: "p/q/index/abcdef0123",
	} {
		if got := b.key(h); got != want {
			t.Errorf("key(%s) = %q, want %q", h, got, want)
		}
	}
}

func TestMissingBucket(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	ctx := context.Background()
	b, err := New(ctx, srv.URL("no-such-bucket-here", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Create(ctx)
	if err == nil {
		t.Fatal("Create in a missing bucket succeeded")
	}
	want := fmt.Sprintf("bucket %q does not exist at %s: create it first", "no-such-bucket-here", srv.Endpoint)
	if err.Error() != want {
		t.Errorf("Create error = %q, want %q", err, want)
	}
	// Loading from a missing bucket is an error, but not "object not found".
	if _, err := b.Load(ctx, backend.Handle{Type: backend.Config}); err == nil || backend.IsNotFound(err) {
		t.Errorf("Load from a missing bucket: err = %v, want an error that is not ErrNotFound", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key-0123456789")
	ctx := context.Background()
	b, err := New(ctx, srv.URL(bucket, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Create(ctx)
	if err == nil {
		t.Fatal("Create with a wrong secret key succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "denied") || !strings.Contains(msg, "AWS_SECRET_ACCESS_KEY") || !strings.Contains(msg, bucket) {
		t.Errorf("Create error %q does not say access was denied and how to fix it", msg)
	}
	if strings.Contains(msg, "wrong-secret-key") || strings.Contains(msg, srv.SecretKey) {
		t.Errorf("error message contains a secret: %q", msg)
	}
	if err := b.Save(ctx, backend.Handle{Type: backend.Config}, []byte("x")); err == nil {
		t.Error("Save with a wrong secret key succeeded")
	}
	if _, err := b.Load(ctx, backend.Handle{Type: backend.Config}); err == nil || backend.IsNotFound(err) {
		t.Errorf("Load with a wrong secret key: err = %v, want a non-NotFound error", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Options
	}{
		{"s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=eu-west-1",
			Options{Bucket: "bkt", Prefix: "a/b", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", PathStyle: true}},
		{"s3://bkt", Options{Bucket: "bkt"}},
		{"s3://bkt/", Options{Bucket: "bkt"}},
		{"s3://bkt//x//y/?path_style=true", Options{Bucket: "bkt", Prefix: "x/y", PathStyle: true}},
		{"s3://bkt/p?endpoint=https://s3.example.com/&path_style=false",
			Options{Bucket: "bkt", Prefix: "p", Endpoint: "https://s3.example.com"}},
	} {
		got, err := ParseURL(c.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	for _, in := range []string{
		"http://bkt/p",
		"s3:///p",
		"s3://bkt/p?endpoint=ftp://x",
		"s3://bkt/p?endpoint=127.0.0.1:9000",
		"s3://bkt/p?path_style=maybe",
		"s3://bkt/p?regoin=us-east-1",
	} {
		if _, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) succeeded, want an error", in)
		}
	}
	// Credentials in the URL are refused without being repeated.
	for _, in := range []string{
		"s3://AKIDSECRET:topsecret@bkt/p",
		"s3://bkt/p?endpoint=http://AKIDSECRET:topsecret@127.0.0.1:9000",
	} {
		_, err := ParseURL(in)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded, want an error", in)
		} else if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}

func TestLocationHasNoSecrets(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	b, err := New(context.Background(), srv.URL("bkt", "a/b"))
	if err != nil {
		t.Fatal(err)
	}
	loc := b.Location()
	if want := "s3://bkt/a/b?endpoint=" + srv.Endpoint; loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	if strings.Contains(loc, srv.AccessKey) || strings.Contains(loc, srv.SecretKey) {
		t.Errorf("Location contains credentials: %q", loc)
	}
}
