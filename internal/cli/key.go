package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/repository"
)

// EnvNewPassword gives 'key add' and 'key passwd' the new password.
const EnvNewPassword = "SNAPDATA_NEW_PASSWORD"

func (e *env) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key list | add | remove ID | passwd",
		Short: "Manage the repository's passwords (keys)",
		Long: `An encrypted repository has one random master key, stored once per password in a key file
(keys/<id>) sealed with a key derived from that password (Argon2id). Several passwords can
open one repository, and changing or removing one rewrites only its key file: no data is
read or written again.

  snapdata key list                          # * marks the key your password opens
  snapdata key add --new-password-file ops.pw
  snapdata key passwd                        # change your password (add the new key, remove yours)
  snapdata key remove 3f2a9c1e               # another password's key

The new password of add and passwd comes from --new-password-file, else $` + EnvNewPassword + `,
else a prompt when standard input is a terminal (asked twice, not echoed). It is never
printed. Changes take the repository's exclusive lock (they wait for running backups).

Safety: a new key file is read back and opened with its password before any key is removed,
so a crash in 'key passwd' leaves the old and the new password both working, never none.
'key remove' refuses (exit 3) to remove the last key, and the key your password opened unless
you add --force (another password must then open the repository); use 'key passwd' to
replace your own. A repository made with --no-encryption has no keys (exit 2).`,
	}
	cmd.AddCommand(e.keyListCommand(), e.keyAddCommand(), e.keyRemoveCommand(), e.keyPasswdCommand())
	return cmd
}

// keyErr gives key errors their exit codes: a refusal 3, a key id or
// repository that has no keys 2.
func keyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, repository.ErrKeyRefused):
		return refusedErr{err}
	case errors.Is(err, repository.ErrNoSuchKey), errors.Is(err, repository.ErrNotEncrypted):
		return usageErr{err}
	}
	return err
}

// keyRepo opens the repository for a key command: encrypted, or a usage
// error.
func (e *env) keyRepo() (*repository.Repository, error) {
	r, err := e.openRepo()
	if err != nil {
		return nil, err
	}
	if !r.Encrypted() {
		r.Close()
		return nil, usageErr{repository.ErrNotEncrypted}
	}
	return r, nil
}

// exclusiveLock takes the repository's exclusive lock for purpose.
func (e *env) exclusiveLock(r *repository.Repository, purpose string) (*repository.Lock, error) {
	if err := e.app.RefuseNoLock(purpose); err != nil {
		return nil, err
	}
	return r.Lock(e.ctx, true, purpose, app.LockWait)
}

func (e *env) keyListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the repository's keys",
		Long: `List the key files: id, when, on which host and by which user each was added (keys made
before snapdata recorded this show "-"), and * for the key your password opened.

  snapdata key list
  snapdata key list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.keyRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			keys, err := r.Keys(e.ctx)
			if err != nil {
				return keyErr(err)
			}
			if asJSON {
				return printJSON(e, keys)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, " \tID\tCREATED\tHOST\tUSER")
			for _, k := range keys {
				mark, created, host, user := " ", "-", "-", "-"
				if k.Current {
					mark = "*"
				}
				if !k.Created.IsZero() {
					created = k.Created.Local().Format("2006-01-02 15:04:05")
				}
				if k.Host != "" {
					host = k.Host
				}
				if k.Username != "" {
					user = k.Username
				}
				if k.Err != "" {
					user += "  (damaged: " + k.Err + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, k.ID[:8], created, host, user)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			e.info("%d key(s); * the key this password opened\n", len(keys))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *env) keyAddCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a password to the repository",
		Long: `Add a key file for a new password. The repository's data is untouched: the new password opens
the same master key. Your current password keeps working.

  snapdata key add --new-password-file ./ops.pw
  SNAPDATA_NEW_PASSWORD=… snapdata key add
  snapdata key add                           # on a terminal: asks twice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withNewPassword(file, "key add", func(r *repository.Repository, lock *repository.Lock, pw []byte) error {
				id, err := r.AddKey(e.ctx, lock, pw, nil)
				if err != nil {
					return keyErr(err)
				}
				e.printf("added key %s\n", id[:8])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "new-password-file", "", "read the new password from this `FILE` (default $"+EnvNewPassword+", else a prompt on a terminal)")
	return cmd
}

func (e *env) keyPasswdCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password you opened the repository with",
		Long: `Replace the key your password opens by one for a new password: the new key file is written,
read back and opened with the new password, and only then is the old key file removed. A
crash in between leaves both passwords working ('snapdata key list' shows both; remove the
old one with 'snapdata key remove ID'). Other passwords and all data are untouched.

  snapdata key passwd --new-password-file ./new.pw
  snapdata key passwd                        # on a terminal: asks twice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withNewPassword(file, "key passwd", func(r *repository.Repository, lock *repository.Lock, pw []byte) error {
				old := r.KeyID()
				id, err := r.ChangePassword(e.ctx, lock, pw, nil)
				if err != nil {
					return keyErr(err)
				}
				e.printf("changed the password: added key %s, removed key %s\n", id[:8], old[:8])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "new-password-file", "", "read the new password from this `FILE` (default $"+EnvNewPassword+", else a prompt on a terminal)")
	return cmd
}

func (e *env) keyRemoveCommand() *cobra.Command {
	var force, dryRun bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a password's key from the repository",
		Long: `Remove a key file (by id or unique id prefix, see 'snapdata key list'): its password no
longer opens the repository. Refused (exit 3): removing the last key, and removing the key
your password opened unless --force is given and another key exists.

  snapdata key remove 3f2a9c1e
  snapdata key remove 3f2a9c1e --dry-run     # check that it may be removed, remove nothing`,
		Args: exactArgs(1, "one key ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.keyRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			if dryRun {
				id, err := r.ResolveKey(e.ctx, args[0])
				if err != nil {
					return keyErr(err)
				}
				if err := r.CheckRemoveKey(e.ctx, id, force); err != nil {
					return keyErr(err)
				}
				e.printf("would remove key %s\n", id[:8])
				return nil
			}
			lock, err := e.exclusiveLock(r, "key remove")
			if err != nil {
				return err
			}
			defer lock.Unlock() //nolint:errcheck // best effort
			id, err := r.ResolveKey(e.ctx, args[0])
			if err != nil {
				return keyErr(err)
			}
			if err := r.RemoveKey(e.ctx, lock, id, force); err != nil {
				return keyErr(err)
			}
			e.printf("removed key %s\n", id[:8])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "also remove the key your password opened (another key must exist)")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "check that the key may be removed, remove nothing")
	return cmd
}

// newPassword returns the new password of key add and passwd: from file,
// else $SNAPDATA_NEW_PASSWORD, else asked twice on a terminal. It refuses
// an empty password and the one in use.
func (e *env) newPassword(file string) ([]byte, error) {
	var pw []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr{fmt.Errorf("--new-password-file: %w", err)}
		}
		pw = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(pw) == 0 {
			return nil, usageErr{fmt.Errorf("--new-password-file %s is empty", file)}
		}
	case e.app.Getenv(EnvNewPassword) != "":
		pw = []byte(e.app.Getenv(EnvNewPassword))
	default:
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return nil, usageErr{fmt.Errorf("no new password: use --new-password-file FILE or set %s (or run on a terminal to be asked)", EnvNewPassword)}
		}
		var err error
		pw, err = e.askPassword(int(f.Fd()))
		if err != nil {
			return nil, err
		}
	}
	if _, entry, err := e.app.RepoLocation(e.repo); err == nil {
		if cur, err := e.app.Password(entry); err == nil && len(cur) > 0 && bytes.Equal(cur, pw) {
			return nil, usageErr{errors.New("the new password is the one in use: choose another")}
		}
	}
	return pw, nil
}

// askPassword reads a new password twice from the terminal fd, without
// echo.
func (e *env) askPassword(fd int) ([]byte, error) {
	fmt.Fprint(e.stderr, "new password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("read the new password: %w", err)
	}
	if len(a) == 0 {
		return nil, usageErr{errors.New("an empty password is not allowed")}
	}
	fmt.Fprint(e.stderr, "enter it again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("read the new password: %w", err)
	}
	if !bytes.Equal(a, b) {
		return nil, usageErr{errors.New("the two passwords differ: nothing was changed")}
	}
	return a, nil
}

// withNewPassword opens the repository, reads the new password (before
// the lock, so a prompt does not hold it) and runs fn under the exclusive
// lock.
func (e *env) withNewPassword(file, purpose string, fn func(r *repository.Repository, lock *repository.Lock, pw []byte) error) error {
	r, err := e.keyRepo()
	if err != nil {
		return err
	}
	defer r.Close()
	pw, err := e.newPassword(file)
	if err != nil {
		return err
	}
	lock, err := e.exclusiveLock(r, purpose)
	if err != nil {
		return err
	}
	defer lock.Unlock() //nolint:errcheck // best effort
	return fn(r, lock, pw)
}
