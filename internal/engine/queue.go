package engine

import "sort"

// BiggestFirst returns a closed channel holding 0..n-1, the indexes of n
// pieces of work, in decreasing order of size (ties in index order):
// workers that range over it start the long pieces first, so none is left
// to run alone at the end.
func BiggestFirst(n int, size func(i int) int64) <-chan int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return size(order[a]) > size(order[b]) })
	queue := make(chan int, n)
	for _, i := range order {
		queue <- i
	}
	close(queue)
	return queue
}
