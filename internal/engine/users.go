package engine

import "fmt"

// CheckUsers refuses a list of clone users that no server should be asked
// to create: a user without a name or password, a name listed twice, an
// unknown access. Its messages never show a password.
func CheckUsers(users []User) error {
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u.Name == "":
			return fmt.Errorf("a user has no name")
		case seen[u.Name]:
			return fmt.Errorf("user %q is listed twice", u.Name)
		case u.Password == "":
			return fmt.Errorf("user %q has no password", u.Name)
		}
		switch u.Access {
		case AccessReadOnly, AccessReadWrite, AccessOwner:
		default:
			return fmt.Errorf("user %q: unknown access %q (expected readonly, readwrite or owner)", u.Name, u.Access)
		}
		seen[u.Name] = true
	}
	return nil
}
