package postgres

// Test helpers exported for the external e2e test (package postgres_test),
// which imports internal/cli and so cannot live in this package.
var (
	LoadRich         = loadRich
	NewDB            = newDB
	Psql             = psql
	CompareChecksums = compareChecksums
	SameSchema       = sameSchema
)
