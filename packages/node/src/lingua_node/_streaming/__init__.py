"""Streaming recognition: partial transcripts while the speaker talks (issue: live captions).

`agreement.py` is the stable-prefix policy (LocalAgreement-2), `recognizer.py` the passes over
a growing buffer, `prefix_translation.py` the translation of the committed prefix,
`stream_job.py` one streaming job from its first audio to its `job_result`, `streams.py` the
node's book of streams (admission, audio order, limits), `rotation.py` the fair order in
which streams get the workers, `workers.py` the agent's shell that runs them.
"""
