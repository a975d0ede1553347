"""The members of one audience (or of a replace being staged), compact enough for 10 million.

A member is stored as the 16-byte digest of its canonical identity (payload.py), about
100 bytes with the dict slot. The canonical string is kept beside it only while the store
is small (kept_rows_cap), so tests can list members; past the cap every kept string is
dropped for good and the store holds digests alone.
"""

from itertools import islice

from payload import decode_member, is_extern_id_only

_ABSENT = object()


class MemberStore:
    def __init__(self, kept_rows_cap, index_extern_ids=True):
        self._members = {}        # digest -> canonical string, or None once rows are dropped
        self._by_extern_id = {}   # EXTERN_ID -> digest, or a set of digests when shared
        self._kept_rows_cap = kept_rows_cap
        self._index_extern_ids = index_extern_ids
        self.rows_kept = kept_rows_cap > 0

    def __len__(self):
        return len(self._members)

    def add(self, batch):
        """Insert the batch's members; return how many were new."""
        before = len(self._members)
        pairs = zip(batch.digests, batch.encoded if self.rows_kept else [None] * batch.num_rows)
        if None in batch.digests:
            pairs = ((digest, row) for digest, row in pairs if digest is not None)
        self._members.update(pairs)
        if self.rows_kept and len(self._members) > self._kept_rows_cap:
            self._members = dict.fromkeys(self._members)
            self.rows_kept = False
        if self._index_extern_ids and batch.extern_ids is not None:
            self._index_batch(batch.extern_ids, batch.digests)
        return len(self._members) - before

    def remove(self, batch):
        """Remove the member with each row's identity; a row carrying only EXTERN_ID removes
        every member with that EXTERN_ID. Return how many members were removed."""
        before = len(self._members)
        extern_ids = batch.extern_ids or [""] * batch.num_rows
        for digest, extern_id, member in zip(batch.digests, extern_ids, batch.encoded):
            if digest is None:
                continue
            if is_extern_id_only(member):
                for member in self._take_extern_id(extern_id):
                    self._members.pop(member, None)
            elif self._members.pop(digest, _ABSENT) is not _ABSENT and extern_id:
                self._unindex(extern_id, digest)
        return before - len(self._members)

    def compare(self, expected, sample_limit=5):
        """How this store differs from `expected` (another store), with a few samples."""
        matched = len(self._members.keys() & expected._members.keys())
        missing = (d for d in expected._members if d not in self._members)
        unexpected = (d for d in self._members if d not in expected._members)
        return {
            "matched": matched,
            "missing": len(expected) - matched,
            "unexpected": len(self) - matched,
            "missing_samples": [expected.describe(d) for d in islice(missing, sample_limit)],
            "unexpected_samples": [self.describe(d) for d in islice(unexpected, sample_limit)],
        }

    def describe(self, digest):
        row = self._members.get(digest)
        return decode_member(row) if row else {"digest": digest.hex()}

    def rows(self, offset, limit):
        """Members as {key: value} dicts, in insertion order; only while rows are kept."""
        page = islice(self._members.values(), offset, offset + limit)
        return [decode_member(row) for row in page]

    def _index_batch(self, extern_ids, digests):
        """Index a batch's EXTERN_IDs in bulk; one by one only where an id is already known
        or repeats within the batch (a shared EXTERN_ID)."""
        fresh = {extern_id: digest for extern_id, digest in zip(extern_ids, digests) if extern_id}
        known = fresh.keys() & self._by_extern_id.keys()
        if known or len(fresh) != len(extern_ids) - extern_ids.count(""):
            for extern_id, digest in zip(extern_ids, digests):
                if extern_id:
                    self._index(extern_id, digest)
        else:
            self._by_extern_id.update(fresh)

    def _index(self, extern_id, digest):
        current = self._by_extern_id.get(extern_id)
        if current is None:
            self._by_extern_id[extern_id] = digest
        elif isinstance(current, set):
            current.add(digest)
        elif current != digest:
            self._by_extern_id[extern_id] = {current, digest}

    def _unindex(self, extern_id, digest):
        current = self._by_extern_id.get(extern_id)
        if current == digest:
            del self._by_extern_id[extern_id]
        elif isinstance(current, set):
            current.discard(digest)

    def _take_extern_id(self, extern_id):
        current = self._by_extern_id.pop(extern_id, None)
        if current is None:
            return ()
        return current if isinstance(current, set) else (current,)
