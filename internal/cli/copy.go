package cli

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

func (e *env) copyCommand() *cobra.Command {
	var from, fromPasswordFile, source string
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "copy --from-repo SRC --repo DST [SNAPSHOT...]",
		Short: "Copy snapshots to another repository (only what it lacks)",
		Long: `Copy the snapshots of the repository --from-repo into the repository --repo: all of them,
the ones named (id or unique id prefix; latest: the newest of each source), or those of
one --source. Only the snapshots the
destination does not hold yet are copied, with only the chunks it lacks; everything is
encrypted again with the destination's keys. A copy with nothing new reads no data.

  snapdata copy --from-repo ./backups --repo 's3://bucket/offsite?endpoint=…'
  snapdata copy --from-repo ./backups --repo offsite --source orders
  snapdata copy --from-repo ./backups --repo offsite 3f2a9c1e --dry-run
  snapdata copy --from-repo ./backups --repo offsite latest --source orders

A job's copy_to: [REPO] in snapdata.yaml runs a copy after each backup (docs/configuration.md).

Passwords: the destination's as for every command (its config entry, $SNAPDATA_PASSWORD,
--password-file); the source's from its config entry when --from-repo names one, else
$SNAPDATA_FROM_PASSWORD, else --from-password-file. Unencrypted repositories need none.

The destination must exist. Make it with the source's chunker and hash key:

  snapdata init --repo offsite --copy-params-from ./backups

Chunks then keep their ids: a copy only decrypts and re-encrypts them (no decompression),
and copied snapshots deduplicate with the destination's own backups. With a destination made
without --copy-params-from, every new chunk is decompressed, hashed with the destination's
key and compressed again; copied snapshots then deduplicate with each other only.

A copied snapshot records the source snapshot it came from (meta copied_from) and is not
copied again. The copy is resumable: an interrupted copy leaves a healthy destination, and
the next one does not upload the chunks that already arrived. It takes a shared lock on
both repositories: a prune of either waits for it (and gives up after 30 s).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageErr{errors.New("copy needs the repository to copy from: --from-repo SRC (see 'snapdata copy --help')")}
			}
			// Both repositories are opened at once: each open derives a
			// key from a password (Argon2id), the most of what a copy with
			// nothing new costs.
			var (
				src, dst       *repository.Repository
				srcLoc         string
				srcErr, dstErr error
				wg             sync.WaitGroup
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				src, srcLoc, srcErr = e.app.OpenCopySource(e.ctx, from, fromPasswordFile)
			}()
			dst, dstErr = e.app.OpenCopyDestination(e.ctx, e.repo, from)
			wg.Wait()
			if src != nil {
				defer src.Close()
			}
			if dst != nil {
				defer dst.Close()
			}
			if srcErr != nil {
				return explainOpen(srcErr)
			}
			if dstErr != nil {
				return explainOpen(dstErr)
			}
			label := "copy to " + dst.Backend().Location()
			var p *progress.Progress
			if !dryRun {
				p = e.newProgress(label)
			}
			var sources []string
			if source != "" {
				sources = []string{source}
			}
			res, err := e.app.Copy(e.ctx, src, dst, app.CopyOptions{IDs: args, Sources: sources, DryRun: dryRun, Progress: p})
			p.Done()
			if err != nil {
				return err
			}
			if source != "" && len(res.Copied)+len(res.Present) == 0 {
				return usageErr{fmt.Errorf("--source %q: the source repository has no snapshot of that source (see 'snapdata snapshots --repo %s')", source, from)}
			}
			if asJSON {
				return printJSON(e, res)
			}
			verb := "copied"
			if dryRun {
				verb = "would copy"
			}
			for _, c := range res.Copied {
				to := ""
				if c.To != "" {
					to = " as " + c.To[:8]
				}
				e.printf("%s snapshot %s%s: %s, %s, %d chunks (%s)\n", verb, c.From[:8], to, c.Source, c.Time, c.Chunks, progress.Bytes(c.Bytes))
			}
			how := "re-encrypted, chunk ids kept"
			if !res.SameKeys {
				how = "re-hashed for the destination's keys"
			}
			if dryRun {
				e.printf("dry run: %d snapshots (%d already in the destination), %d chunks, %s would be copied from %s (%s); nothing was written\n",
					len(res.Copied), len(res.Present), res.Chunks, progress.Bytes(res.Bytes), srcLoc, how)
				return nil
			}
			e.printf("%d snapshots copied (%d already in the destination): %d chunks read, %d stored, %s added in %s (%s)\n",
				len(res.Copied), len(res.Present), res.ChunksRead, res.ChunksUploaded, progress.Bytes(res.AddedBytes),
				(time.Duration(res.Seconds * float64(time.Second))).Round(time.Millisecond), how)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from-repo", "", "the repository to copy from: a path, s3://… URL or a config repository name (required)")
	cmd.Flags().StringVar(&fromPasswordFile, "from-password-file", "", "read the source repository's password from this file (default $"+app.EnvFromPassword+")")
	cmd.Flags().StringVar(&source, "source", "", "copy only the snapshots of this source")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be copied (snapshots, chunks, bytes) and write nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// copyParams reads the parameters of the repository init --copy-params-from names.
func (e *env) copyParams(from, passwordFile string) (*repository.Params, error) {
	src, _, err := e.app.OpenCopySource(e.ctx, from, passwordFile)
	if err != nil {
		return nil, fmt.Errorf("--copy-params-from: %w", explainOpen(err))
	}
	defer src.Close()
	p := src.Params()
	return &p, nil
}
