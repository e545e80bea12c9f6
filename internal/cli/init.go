package cli

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/repository"
)

func (e *env) initCommand() *cobra.Command {
	var noEnc, cols bool
	var chunkSize, chunkerName, compression, paramsFrom, paramsPasswordFile string
	cmd := &cobra.Command{
		Use:   "init --repo REPO",
		Short: "Create a new repository",
		Long: `Create a new, empty repository. It is encrypted with a key derived from the password
(Argon2id) unless --no-encryption is given.

The chunker, the average chunk size and the compression are fixed when the repository is
created; snapshots written later all use them.

  --chunker fastcdc      FastCDC with a secret per-repository gear table (default): about
                         5× faster than rabin, chunk sizes close to the average
  --chunker rabin        restic's Rabin chunker, as repositories made before snapdata had
                         this flag (older snapdata releases can still open these)
  --compression fastest  zstd -1 (default): keeps backups fast
  --compression default  zstd -3: ~2 % smaller, ~2× the compression CPU
  --compression better   zstd -7: ~10 % smaller, below pg_dump -Fc, ~7× the compression CPU
  --compression best     zstd -11: ~12 % smaller, ~16× the compression CPU (archives)
  (figures for libzstd, which snapdata uses when built with cgo; "snapdata version" says)
  --columns=false        store table data row by row, as releases before the column filter
                         did (they cannot open a repository that uses it). By default each
                         chunk of tab-separated rows is stored column by column before it is
                         compressed: ids next to ids, timestamps next to timestamps. On the
                         bench data that makes the repository about 14 % smaller.

Whatever the level, the new chunks of a backup in which at most a tenth of the data is new
(a later backup of a database that mostly did not change) are compressed at least at
"better": about 10 % smaller for little CPU, since there is little to compress.

  SNAPDATA_PASSWORD=… snapdata init --repo ./backups
  snapdata init --repo ./backups --compression better
  snapdata init --repo 's3://bucket/prefix?endpoint=http://127.0.0.1:9000' --password-file /run/secrets/repo

--copy-params-from REPO makes a repository for 'snapdata copy' from REPO: it takes REPO's
chunker, chunk sizes and hash key (its own password and master key stay its own), so copied
chunks keep their ids, are copied without being decompressed, and deduplicate with this
repository's own backups. The two repositories then reveal to each other's readers which
chunks they have in common (as restic's --copy-chunker-params). REPO's password comes from
its config entry, $SNAPDATA_FROM_PASSWORD or --from-password-file.

  snapdata init --repo offsite --copy-params-from ./backups`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := repository.InitOptions{NoEncryption: noEnc, NoColumns: !cols}
			if chunkSize != "" {
				n, err := parseSize(chunkSize)
				if err != nil || n < 4096 || n > 16<<20 || n&(n-1) != 0 {
					return usageErr{fmt.Errorf("--chunk-size %q: expected a power of two between 4KiB and 16MiB, e.g. 1MiB", chunkSize)}
				}
				opts.ChunkAvgBits = bits.TrailingZeros64(uint64(n))
			}
			if !slices.Contains(repository.Chunkers, chunkerName) {
				return usageErr{fmt.Errorf("--chunker %q: expected one of %s", chunkerName, strings.Join(repository.Chunkers, ", "))}
			}
			opts.Chunker = chunkerName
			level, err := repository.ParseCompression(compression)
			if err != nil {
				return usageErr{fmt.Errorf("--compression %q: expected one of %s", compression, strings.Join(repository.Compressions, ", "))}
			}
			opts.CompressionLevel = level
			if paramsFrom != "" {
				if cmd.Flags().Changed("chunker") || chunkSize != "" {
					return usageErr{errors.New("--copy-params-from takes the chunker and chunk size of that repository: drop --chunker and --chunk-size")}
				}
				p, err := e.copyParams(paramsFrom, paramsPasswordFile)
				if err != nil {
					return err
				}
				opts.CopyParams = p
				opts.Chunker, opts.ChunkAvgBits = "", 0
			}
			r, loc, err := e.app.InitRepository(e.ctx, e.repo, opts)
			if err != nil {
				return err
			}
			defer r.Close()
			kind := "encrypted"
			if noEnc {
				kind = "unencrypted"
			}
			p := r.Params()
			filter := "rows stored column by column"
			if !p.Columns {
				filter = "rows stored row by row"
			}
			e.printf("created %s repository %s at %s (%s chunker, %s average chunks, %s compression, %s)\n", kind, p.ID[:8], loc,
				p.ChunkerName(), chunkSizeName(p.ChunkAvgBits), repository.CompressionName(p.CompressionLevel), filter)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noEnc, "no-encryption", false, "store data unencrypted (still compressed and deduplicated)")
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "", "average chunk size, a power of two (default 1MiB)")
	cmd.Flags().StringVar(&chunkerName, "chunker", repository.DefaultChunker, "content-defined chunker: "+strings.Join(repository.Chunkers, " or "))
	cmd.Flags().StringVar(&compression, "compression", "fastest", "zstd compression: "+strings.Join(repository.Compressions, ", "))
	cmd.Flags().StringVar(&paramsFrom, "copy-params-from", "", "take the chunker and hash key of this `REPO` (for 'snapdata copy': chunks keep their ids)")
	cmd.Flags().StringVar(&paramsPasswordFile, "from-password-file", "", "the password file of the --copy-params-from repository (default $SNAPDATA_FROM_PASSWORD)")
	cmd.Flags().BoolVar(&cols, "columns", true, "store chunks of tab-separated rows column by column before compressing them (smaller)")
	return cmd
}

// chunkSizeName spells 2^bits bytes as --chunk-size takes it.
func chunkSizeName(bits int) string {
	if bits >= 20 {
		return fmt.Sprintf("%dMiB", 1<<(bits-20))
	}
	return fmt.Sprintf("%dKiB", 1<<max(bits-10, 0))
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suf) {
			mult, s = u.m, strings.TrimSuffix(s, u.suf)
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, err
	}
	return n * mult, nil
}
