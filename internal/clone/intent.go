package clone

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// An intent is written before a clone creates its build database and
// removed when the clone ends: PostgreSQL cannot create a database and
// label it in one step, so a clone killed between the two leaves an
// unlabeled database that only its intent proves to be the clone's.
type intent struct {
	Record   Record `json:"record"`
	Server   string `json:"server"` // the target's server and database, no credentials (dsn.SourceName)
	Database string `json:"database"`
}

// intentDir holds the intents: $SNAPDATA_STATE_DIR/clone-intents, or the
// user's cache directory's snapdata/clone-intents.
func intentDir() string {
	if d := os.Getenv("SNAPDATA_STATE_DIR"); d != "" {
		return filepath.Join(d, "clone-intents")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "snapdata", "clone-intents")
	}
	return filepath.Join(os.TempDir(), "snapdata-clone-intents")
}

func writeIntent(in intent) (func(), error) {
	dir := intentDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, in.Record.Token+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, err
	}
	return func() { os.Remove(p) }, nil
}

// deadIntents returns the intents, for server, of clones that are over,
// with a function that removes each.
func deadIntents(server string, now time.Time) map[string]func() {
	out := map[string]func(){}
	dir := intentDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var in intent
		if json.Unmarshal(b, &in) != nil || in.Server != server || in.Record.over(now) == "" {
			continue
		}
		out[in.Database] = func() { os.Remove(p) }
	}
	return out
}
