package testsrv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a running S3-compatible server (versitygw with its posix
// backend in a temporary directory).
type S3Server struct {
	Endpoint  string // http://127.0.0.1:port
	Region    string // us-east-1
	AccessKey string
	SecretKey string
	Dir       string // temporary directory; buckets live in Dir/root

	stop func()
	pid  int
}

// Signal sends sig to the server process (SIGSTOP and SIGCONT simulate a
// server that stalls).
func (s *S3Server) Signal(sig syscall.Signal) error { return syscall.Kill(s.pid, sig) }

// Stop stops the server now. It is called automatically by Cleanup.
func (s *S3Server) Stop() { s.stop() }

// LogPath is the server's log file.
func (s *S3Server) LogPath() string { return filepath.Join(s.Dir, "versitygw.log") }

// Client returns an AWS SDK client for the server (path-style addressing,
// the server's credentials).
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates bucket name, failing t on error.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testsrv: create bucket %q: %v", name, err)
	}
}

// NewBucket creates a bucket with a unique name and returns the name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("snapdata-test-%d-%s", nextSeq(), randomHex(3))
	s.CreateBucket(t, name)
	return name
}

// URL returns a repository URL for bucket and prefix (prefix may be ""):
// s3://bucket/prefix?endpoint=http://127.0.0.1:port&region=us-east-1.
func (s *S3Server) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&region=" + s.Region
}

// Env returns the AWS environment variables (KEY=value) that give a client
// process the server's credentials.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// SetEnv sets the AWS environment variables for the duration of t (with
// t.Setenv, so t must not be parallel), and unsets AWS_PROFILE.
func (s *S3Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				t.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
	t.Setenv("AWS_PROFILE", "")
	_ = os.Unsetenv("AWS_PROFILE") // t.Setenv restores the old value at the end
}

var sharedS3 struct {
	once sync.Once
	s3   *S3Server
	err  error
}

// S3 returns the S3 server shared by all tests of this binary, starting it
// on first use. Call Cleanup from TestMain to stop it.
func S3(t testing.TB) *S3Server {
	t.Helper()
	sharedS3.once.Do(func() {
		sharedS3.s3, sharedS3.err = startS3()
	})
	if sharedS3.err != nil {
		fail(t, sharedS3.err)
	}
	return sharedS3.s3
}

// BinCache is the directory where scripts/test keeps built tools:
// $SNAPDATA_BIN_CACHE, else $HOME/.cache/snapdata/bin.
func BinCache() string {
	if d := os.Getenv("SNAPDATA_BIN_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "snapdata", "bin")
}

// VersitygwPath finds the versitygw binary in BinCache or PATH.
func VersitygwPath() (string, error) {
	p, err := lookPath("versitygw", BinCache())
	if err != nil {
		return "", &MissingError{What: "versitygw",
			Hint: "run scripts/test, or GOBIN=" + BinCache() + " go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"}
	}
	return p, nil
}

func startS3() (srv *S3Server, err error) {
	bin, err := VersitygwPath()
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("s3")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	s := &S3Server{Region: "us-east-1", AccessKey: "AK" + randomHex(9), SecretKey: randomHex(20), Dir: dir}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
		cmd := exec.Command(bin, "--port", fmt.Sprintf("127.0.0.1:%d", port),
			"--region", s.Region, "--quiet", "posix", root)
		// Credentials through the environment keep them out of ps output.
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
		cmd.Dir = dir
		pr, err := startProc("versitygw", cmd, s.LogPath(), syscall.SIGTERM)
		if err != nil {
			return nil, err
		}
		client := s.Client()
		err = pr.waitReady(func(ctx context.Context) error {
			_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		})
		if err == nil {
			s.pid = cmd.Process.Pid
			s.stop = register(func() {
				pr.stop()
				_ = os.RemoveAll(dir)
			})
			return s, nil
		}
		died := pr.exited()
		pr.stop()
		lastErr = err
		if !died {
			break
		}
	}
	return nil, fmt.Errorf("start versitygw: %w", lastErr)
}
