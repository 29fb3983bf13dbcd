"""LocalAgreement-2: which words of a re-decoded window are stable.

Pure. Each decode of the growing window yields a hypothesis (words with
absolute times). A word is *committed* once two consecutive hypotheses agree
on it and on every word before it (Machacek et al., "Turning Whisper into
Real-Time Transcription System", 2023). Committed words never change; the
rest is the unstable tail that interims show.

Words already committed are removed from a new hypothesis by time (anything
starting before the last committed end, with a small tolerance) and by
n-gram overlap at the seam, since a re-decode often repeats the last
committed word or two with slightly different times.
"""

from __future__ import annotations

import unicodedata

from gateway.core.types import Word

MAX_OVERLAP_NGRAM = 5
SEAM_LOOKBACK_S = 1.5
SEAM_SEARCH = 8
SEAM_SLACK_S = 1.0


def normalize(text: str) -> str:
    """Compare words by letters and digits only, case-folded."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


class LocalAgreement:
    """Commit policy for one channel of one stream."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        """Committed words not yet handed out as a final."""
        self.tail: list[Word] = []
        """The unstable words of the latest hypothesis."""
        self.last_committed_end = 0.0
        self._history: list[str] = []

    def _fresh(self, hypothesis: list[Word]) -> list[Word]:
        """Drop what was committed already from a new hypothesis.

        Re-decoded words near the seam carry new times (Whisper's word times
        move by a few hundred ms between decodes), so time alone both keeps
        repeats and drops new words. The seam is found by text first: the
        longest run of the last committed words that reappears among the
        first candidates, at a plausible time; time decides only without one.
        """
        seam = self.last_committed_end
        candidates = [w for w in hypothesis if w.end > seam - SEAM_LOOKBACK_S and normalize(w.text)]
        keys = [normalize(w.text) for w in candidates]
        history = self._history
        for n in range(min(MAX_OVERLAP_NGRAM, len(history)), 0, -1):
            for i in range(min(SEAM_SEARCH, len(keys) - n + 1)):
                last = candidates[i + n - 1]
                if keys[i : i + n] == history[-n:] and last.start < seam + SEAM_SLACK_S:
                    return candidates[i + n :]
        # Without a text seam, a word is new when most of it lies after the seam:
        # its start alone keeps a repeat that moved a little later and drops a
        # new word aligned a little early.
        fresh = [w for w in candidates if (w.start + w.end) / 2 > seam]
        return [w for w in fresh if normalize(w.text)]

    def _commit(self, words: list[Word]) -> list[Word]:
        if not words:
            return []
        # Committed times only move forward: a re-decode may place a new word a
        # little before the end of the last committed one.
        placed = []
        floor = self.last_committed_end
        for w in words:
            start = max(w.start, floor)
            end = max(w.end, start)
            placed.append(w if (start, end) == (w.start, w.end) else Word(w.text, start, end, w.probability))
            floor = end
        self.committed.extend(placed)
        self.last_committed_end = max(self.last_committed_end, placed[-1].end)
        self._history = (self._history + [normalize(w.text) for w in placed])[-MAX_OVERLAP_NGRAM:]
        return placed

    def seed(self, words: list[Word]) -> None:
        """Words another engine already finalised just before this policy takes over (failover)."""
        if words:
            self.last_committed_end = max(self.last_committed_end, words[-1].end)
            self._history = [normalize(w.text) for w in words][-MAX_OVERLAP_NGRAM:]

    def update(
        self,
        hypothesis: list[Word],
        horizon: float | None = None,
        doubt: tuple[float, float] | None = None,
        sure: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> list[Word]:
        """Take a new hypothesis; return the words it newly commits.

        Words ending after ``horizon`` (near the end of the decoded audio) are
        never committed: a word cut by the window's edge ("you" of "your
        country") can look stable twice before the rest of it is heard.
        ``doubt`` is ``(probability, horizon)``: a word the model is less sure
        of than ``probability`` must end before that (earlier) horizon, since
        it is the one more right context most often changes. ``sure`` is
        ``(probability, horizon)`` too: a word at least that probable, ending
        by that horizon, commits from this one decode without waiting for a
        second to agree (when every word before it commits), which halves the
        decodes a final needs. A word ending by ``deadline`` commits from this
        decode whatever the last one said (when every word before it commits):
        it has had so much right context that waiting for two decodes to agree
        only delays it (a word the model keeps changing, "light"/"my"/"I").
        """
        fresh = self._fresh(hypothesis)
        agreed = 0
        for i, new in enumerate(fresh):
            old = self.tail[i] if i < len(self.tail) else None
            if horizon is not None and new.end > horizon:
                break
            if deadline is not None and new.end <= deadline:
                agreed += 1
                continue
            least = new.probability if old is None else min(old.probability, new.probability)
            if doubt is not None and least < doubt[0] and new.end > doubt[1]:
                break
            agrees = old is not None and normalize(old.text) == normalize(new.text)
            confident = sure is not None and new.probability >= sure[0] and new.end <= sure[1]
            if not (agrees or confident):
                break
            agreed += 1
        newly = self._commit(fresh[:agreed])
        self.tail = fresh[agreed:]
        return newly

    def commit_all(self, hypothesis: list[Word] | None = None) -> None:
        """Commit the whole hypothesis (or the current tail): the audio is final."""
        words = self._fresh(hypothesis) if hypothesis is not None else self.tail
        self._commit(words)
        self.tail = []

    def commit_before(self, time: float) -> None:
        """Commit tail words ending by ``time`` (forced, when the window is full)."""
        cut = 0
        while cut < len(self.tail) and self.tail[cut].end <= time:
            cut += 1
        self._commit(self.tail[:cut])
        self.tail = self.tail[cut:]

    def take_committed(self) -> list[Word]:
        """Hand out committed words for a final; they leave the policy's care."""
        words, self.committed = self.committed, []
        return words

    @property
    def pending(self) -> list[Word]:
        """Everything not yet final: committed words then the unstable tail."""
        return self.committed + self.tail
