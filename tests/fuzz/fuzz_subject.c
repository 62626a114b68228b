/* libFuzzer target: subject and pattern checks, the trie and the
 * permission check.  The input is split at NUL bytes: the first parts are
 * patterns to subscribe (the odd ones in a queue group), the last a
 * subject to match; the result is compared with a naive matcher, and
 * vbi_pattern_covers with the same matcher.  The subject is matched again
 * from the match cache, and once more after the plain subs it matched are
 * removed. */
#include "core/subject.h"

#include <verbus/verbus.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SUBS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Token by token, NATS rules, for patterns that passed the check. */
static bool naive(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t i = 0, j = 0;

	for (;;) {
		size_t pe = i, se = j;

		while (pe < plen && p[pe] != '.')
			pe++;
		if (pe - i == 1 && p[i] == '>')
			return j < slen;
		if (j >= slen)
			return false;
		while (se < slen && s[se] != '.')
			se++;
		if (!(pe - i == 1 && p[i] == '*') &&
		    (pe - i != se - j || memcmp(p + i, s + j, pe - i)))
			return false;
		if (pe >= plen || se >= slen)
			return pe >= plen && se >= slen;
		i = pe + 1;
		j = se + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct vbi_sub subs[SUBS];
	bool on[SUBS] = { false };
	bool hit[SUBS] = { false }; /* pattern i matches the subject */
	struct vbi_sublist *sl;
	struct vbi_match m;
	size_t n = 0, start = 0, i, j, want = 0, plain = 0;
	const char *subj;
	size_t slen;

	if (vbi_sublist_create(&sl) != VB_OK)
		return 0;
	vbi_match_init(&m);
	for (i = 0; i <= size && n < SUBS; i++) {
		if (i < size && in[i] != '\0')
			continue;
		(void)vbi_subject_check(in + start, i - start);
		vbi_sub_init(&subs[n], in + start, i - start,
			     (n & 1) ? "q" : NULL, (n & 1) ? 1 : 0, NULL);
		on[n] = vbi_sublist_insert(sl, &subs[n]) == VB_OK;
		if (on[n] !=
		    (vbi_pattern_check(in + start, i - start) == VB_OK))
			abort();
		n++;
		start = i + 1;
	}
	if (n == 0)
		goto out;
	/* The last part is also the subject. */
	subj = subs[n - 1].pattern;
	slen = subs[n - 1].pattern_len;
	if (vbi_sublist_match(sl, subj, slen, &m) != VB_OK) {
		if (vbi_subject_check(subj, slen) == VB_OK)
			abort();
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!on[i])
			continue;
		hit[i] =
			naive(subs[i].pattern, subs[i].pattern_len, subj, slen);
		/* Permissions: a pattern covers a subject exactly when it
		 * matches it, and covers itself. */
		if (vbi_pattern_covers(subs[i].pattern, subs[i].pattern_len,
				       subj, slen) != hit[i] ||
		    !vbi_pattern_covers(subs[i].pattern, subs[i].pattern_len,
					subs[i].pattern, subs[i].pattern_len))
			abort();
		if (!hit[i])
			continue;
		if (i & 1)
			want = 1; /* one member of group "q" */
		else
			plain++;
	}
	if (m.n != plain + want)
		abort();
	/* The broker's variant (subject already checked) agrees; the queue
	 * group's rotation moved on, but still one member gets it. */
	if (vbi_sublist_match_valid(sl, subj, slen, &m) != VB_OK ||
	    m.n != plain + want)
		abort();
	/* A pattern that covers another matches whatever that one matches. */
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			if (on[i] && on[j] && hit[j] && !hit[i] &&
			    vbi_pattern_covers(
				    subs[i].pattern, subs[i].pattern_len,
				    subs[j].pattern, subs[j].pattern_len))
				abort();
	/* Unsubscribe the plain subs that matched: the match cache's entry
	 * for the subject is stale now, and no result may name them. */
	for (i = 0; i < n; i += 2) {
		if (on[i] && hit[i]) {
			vbi_sublist_remove(sl, &subs[i]);
			on[i] = false;
		}
	}
	if (vbi_sublist_match_valid(sl, subj, slen, &m) != VB_OK || m.n != want)
		abort();
	for (i = 0; i < m.n; i++)
		if (m.subs[i]->link.sl != sl)
			abort();
out:
	for (i = 0; i < n; i++)
		if (on[i])
			vbi_sublist_remove(sl, &subs[i]);
	if (vbi_sublist_count(sl) != 0)
		abort();
	vbi_match_fini(&m);
	vbi_sublist_destroy(sl);
	return 0;
}
