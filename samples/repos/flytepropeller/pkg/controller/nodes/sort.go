package nodes

import "sort"

// sortedIDs makes every round visit nodes in the same order, so rounds are reproducible in tests.
func sortedIDs(nodes map[string]*Node) []string {
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
