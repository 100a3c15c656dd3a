"""Person ids with a meaning in the Market-1501 protocol, shared by the parsers and the evaluation.

`sal_tf.data` writes them into records and `sal_tf.evaluation` reads them from id arrays; neither
layer may import the other, so the values live here (`sal_tf/data/records.py` describes the records).
"""

JUNK_PID = -1  # ignored by the evaluation (neither a match nor a mismatch), never trained on
DISTRACTOR_PID = 0  # an ordinary non-matching gallery id (Market-1501's distractors), never trained on
