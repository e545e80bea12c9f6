// Package s3 stores a repository in an S3-compatible bucket through the AWS
// SDK v2. Credentials come from the standard AWS sources (environment
// variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_PROFILE and the shared config files), never from the URL.
//
// A repository URL looks like
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true
//
// endpoint is optional (AWS S3 when absent); region defaults to AWS_REGION or
// us-east-1; path_style defaults to true when an endpoint is given.
//
// Every request has a timeout and is retried: timeout=60s (the default) is
// how long a connection may stay silent, no byte sent or received, before an
// attempt fails (an upload that progresses never times out, however slow);
// attempts=5 (the default) is how many times a request is tried, with
// exponential backoff between attempts (at most 20 s). Each retry is logged
// with the endpoint and the operation.
//
// Object keys mirror the local layout: <prefix>/config,
// <prefix>/data/<first two characters>/<name> and <prefix>/<type>/<name>.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/snapdata/snapdata/internal/backend"
)

// Backend is a repository in an S3 bucket under a key prefix.
type Backend struct {
	client   *s3.Client
	bucket   string
	prefix   string // without leading or trailing slash; may be empty
	endpoint string // as given, without credentials; "" for AWS
	region   string
	timeout  time.Duration
	attempts int
	log      *slog.Logger
}

var _ backend.Backend = (*Backend)(nil)

// Options are the parsed parts of a repository URL.
type Options struct {
	Bucket    string
	Prefix    string
	Endpoint  string
	Region    string
	PathStyle bool
	// Timeout is how long a connection may stay silent during a request
	// before the attempt fails (0: DefaultTimeout).
	Timeout time.Duration
	// Attempts is how many times a request is tried (0: DefaultAttempts).
	Attempts int
	// Logger receives a line for every retry (nil: discarded).
	Logger *slog.Logger
}

// ParseURL parses an s3:// repository URL. Error messages never repeat
// credentials that a user may have put into the URL by mistake.
func ParseURL(rawURL string) (Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Options{}, fmt.Errorf("parse S3 repository URL: %w", redactURLError(err))
	}
	if u.Scheme != "s3" {
		return Options{}, fmt.Errorf("parse S3 repository URL: scheme is %q, want s3://bucket/prefix", u.Scheme)
	}
	if u.User != nil {
		return Options{}, errors.New("parse S3 repository URL: credentials in the URL are not supported; " +
			"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead")
	}
	o := Options{Bucket: u.Host, Prefix: strings.Trim(path.Clean("/"+u.Path), "/")}
	if o.Bucket == "" {
		return Options{}, errors.New("parse S3 repository URL: no bucket; want s3://bucket/prefix")
	}
	q := u.Query()
	pathStyleSet := false
	for k, v := range q {
		val := v[len(v)-1]
		switch k {
		case "endpoint":
			e, err := url.Parse(val)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Options{}, fmt.Errorf("parse S3 repository URL: endpoint must be an http:// or https:// URL")
			}
			if e.User != nil {
				return Options{}, errors.New("parse S3 repository URL: credentials in the endpoint are not supported; " +
					"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
			}
			o.Endpoint = strings.TrimRight(e.String(), "/")
		case "region":
			o.Region = val
		case "path_style":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return Options{}, fmt.Errorf("parse S3 repository URL: path_style=%q is not true or false", val)
			}
			o.PathStyle, pathStyleSet = b, true
		case "timeout":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return Options{}, fmt.Errorf("parse S3 repository URL: timeout=%q is not a positive duration (like 30s or 2m)", val)
			}
			o.Timeout = d
		case "attempts":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return Options{}, fmt.Errorf("parse S3 repository URL: attempts=%q is not a whole number of at least 1", val)
			}
			o.Attempts = n
		default:
			return Options{}, fmt.Errorf("parse S3 repository URL: unknown parameter %q (known: endpoint, region, path_style, timeout, attempts)", k)
		}
	}
	if !pathStyleSet {
		o.PathStyle = o.Endpoint != ""
	}
	return o, nil
}

// redactURLError drops the URL from a *url.Error, which may hold secrets.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// New opens the repository at rawURL. It loads AWS credentials and builds a
// client but does not contact the server.
func New(ctx context.Context, rawURL string) (*Backend, error) {
	return NewLogged(ctx, rawURL, nil)
}

// NewLogged is New with a logger for the retries (nil: discarded).
func NewLogged(ctx context.Context, rawURL string, logger *slog.Logger) (*Backend, error) {
	o, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	o.Logger = logger
	return NewWithOptions(ctx, o)
}

// NewWithOptions is New with the URL already parsed.
func NewWithOptions(ctx context.Context, o Options) (*Backend, error) {
	var loadOpts []func(*config.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration for s3://%s: %w", o.Bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	b := &Backend{bucket: o.Bucket, prefix: o.Prefix, endpoint: o.Endpoint, region: cfg.Region,
		timeout: o.Timeout, attempts: o.Attempts, log: o.Logger}
	if b.timeout <= 0 {
		b.timeout = DefaultTimeout
	}
	if b.attempts <= 0 {
		b.attempts = DefaultAttempts
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.client = s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.HTTPClient = httpClient(b.timeout)
		so.Retryer = retryer(b.attempts, b.timeout, b.log, b.where())
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		// Save sends Content-MD5 itself; trailing checksums in
		// aws-chunked bodies are not supported by every S3-compatible
		// server.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return b, nil
}

// Location returns the repository URL without credentials.
func (b *Backend) Location() string {
	s := "s3://" + b.bucket
	if b.prefix != "" {
		s += "/" + b.prefix
	}
	if b.endpoint != "" {
		s += "?endpoint=" + b.endpoint
	}
	return s
}

// where names the server for error messages.
func (b *Backend) where() string {
	if b.endpoint != "" {
		return b.endpoint
	}
	return "AWS S3 (" + b.region + ")"
}

func (b *Backend) join(parts ...string) string {
	if b.prefix != "" {
		parts = append([]string{b.prefix}, parts...)
	}
	return strings.Join(parts, "/")
}

// key returns the object key of h.
func (b *Backend) key(h backend.Handle) string {
	switch h.Type {
	case backend.Config:
		return b.join("config")
	case backend.Data:
		if len(h.Name) >= 2 {
			return b.join("data", h.Name[:2], h.Name)
		}
	}
	return b.join(string(h.Type), h.Name)
}

// Create checks that the bucket exists and holds no repository at the
// prefix. Buckets are not created: that is an administrator's decision
// (region, policies, versioning, lifecycle).
func (b *Backend) Create(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		switch httpStatus(err) {
		case http.StatusNotFound:
			return fmt.Errorf("bucket %q does not exist at %s: create it first", b.bucket, b.where())
		case http.StatusForbidden:
			return fmt.Errorf("access to bucket %q at %s denied: check the AWS credentials "+
				"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE): %w", b.bucket, b.where(), err)
		}
		return b.fail(fmt.Sprintf("check bucket %q at %s", b.bucket, b.where()), err)
	}
	_, err = b.Stat(ctx, backend.Handle{Type: backend.Config})
	if err == nil {
		return fmt.Errorf("create repository at %s: a repository already exists there", b.Location())
	}
	if !backend.IsNotFound(err) {
		return fmt.Errorf("create repository at %s: %w", b.Location(), err)
	}
	return nil
}

// Save uploads data in one PUT with Content-Length and Content-MD5; S3
// makes an object visible only when its upload completed.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	sum := md5.Sum(data)
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(b.key(h)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return b.fail(fmt.Sprintf("save %s to %s", h, b.Location()), err)
	}
	return nil
}

// Load downloads a whole object. The SDK retries the request; a body that
// breaks off or stalls is fetched again here, up to the same attempts.
func (b *Backend) Load(ctx context.Context, h backend.Handle) ([]byte, error) {
	what := fmt.Sprintf("load %s from %s", h, b.Location())
	for attempt := 1; ; attempt++ {
		out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.key(h)),
		})
		if err != nil {
			if isNotFound(err) {
				return nil, backend.NotFound(h)
			}
			return nil, b.fail(what, err)
		}
		data, err := readBody(out)
		if err == nil {
			return data, nil
		}
		if ctx.Err() != nil || attempt >= b.attempts {
			return nil, b.fail(what, err)
		}
		b.log.Warn("S3 download broke off, retrying", "endpoint", b.where(), "operation", "GetObject",
			"object", h.String(), "attempt", attempt, "max_attempts", b.attempts, "err", err)
	}
}

// readBody reads a GetObject response's body whole.
func readBody(out *s3.GetObjectOutput) ([]byte, error) {
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, err
	}
	if out.ContentLength != nil && int64(buf.Len()) != *out.ContentLength {
		return nil, fmt.Errorf("got %d bytes, want %d", buf.Len(), *out.ContentLength)
	}
	return buf.Bytes(), nil
}

// Stat returns an object's size.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.key(h)),
	})
	if err != nil {
		if isNotFound(err) {
			return backend.FileInfo{}, backend.NotFound(h)
		}
		return backend.FileInfo{}, b.fail(fmt.Sprintf("stat %s in %s", h, b.Location()), err)
	}
	name := h.Name
	if h.Type == backend.Config {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: aws.ToInt64(out.ContentLength)}, nil
}

// Remove deletes an object; an absent one is not an error.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.key(h)),
	})
	if err != nil && !isNotFound(err) {
		return b.fail(fmt.Sprintf("remove %s from %s", h, b.Location()), err)
	}
	return nil
}

// List calls fn for every object of type t.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.Config {
		fi, err := b.Stat(ctx, backend.Handle{Type: backend.Config})
		if backend.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list config: %w", err)
		}
		return fn(fi)
	}
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.join(string(t)) + "/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.fail(fmt.Sprintf("list %s in %s", t, b.Location()), err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if strings.HasSuffix(key, "/") {
				continue // a "directory" marker, not an object
			}
			if err := fn(backend.FileInfo{Name: path.Base(key), Size: aws.ToInt64(obj.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases idle connections.
func (b *Backend) Close() error { return nil }

// httpStatus returns the HTTP status code of a failed request, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNotFound reports whether err says the object (not the bucket) is absent.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	return httpStatus(err) == http.StatusNotFound && (apiErr == nil || apiErr.ErrorCode() != "NoSuchBucket")
}
