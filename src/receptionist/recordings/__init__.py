"""Call recordings: the bridge's raw tape (tape.py), the stereo encoding (encode.py), the stores
they are kept in (stores.py) and the worker's uploads and retention (uploader.py)."""
