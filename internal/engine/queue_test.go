package engine

import (
	"reflect"
	"testing"
)

func TestBiggestFirst(t *testing.T) {
	for _, tc := range []struct {
		sizes []int64
		want  []int
	}{
		{nil, nil},
		{[]int64{5}, []int{0}},
		{[]int64{1, 9, 3, 9, 0}, []int{1, 3, 2, 0, 4}}, // ties keep index order
	} {
		var got []int
		for i := range BiggestFirst(len(tc.sizes), func(i int) int64 { return tc.sizes[i] }) {
			got = append(got, i)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("sizes %v: order %v, want %v", tc.sizes, got, tc.want)
		}
	}
}
