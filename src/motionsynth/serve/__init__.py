"""`motionsynth serve`: a local web editor — load a BVH, pick keyframes or body parts, run a model, scrub the result
in 3D beside the input, download it as BVH.

`app.create_app` builds the FastAPI application (the JSON API and the static page, its work limits); `guard` is the
middleware every request passes first (host, origin and token, body size and deadline); `work` holds the worker pools
and the expiring request folders; `server.make_server` runs it all under uvicorn with a timeout for half-sent
headers. The command (`motionsynth.cli.serve`) wires the flags to them. FastAPI, uvicorn and python-multipart are the
optional ``serve`` extra (``pip install "motionsynth[serve]"``); three.js is vendored under ``static/vendor/`` (no CDN
at run time).
"""
