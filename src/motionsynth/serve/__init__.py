"""`motionsynth serve`: a local web editor — load a BVH, pick keyframes or body parts, run a model, scrub the result
in 3D beside the input, download it as BVH.

`app.create_app` builds the FastAPI application (the JSON API and the static page); the command
(`motionsynth.cli.serve`) runs it with uvicorn. FastAPI, uvicorn and python-multipart are the optional ``serve``
extra (``pip install "motionsynth[serve]"``); three.js is vendored under ``static/vendor/`` (no CDN at run time).
"""
