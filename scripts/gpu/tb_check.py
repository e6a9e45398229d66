"""Reads the events file from scripts/gpu/tb-write.ts with TensorBoard's EventAccumulator and compares every scalar
(tag, step, float32 value), the image (tag, step, width, height, PNG bytes) with expected.json. Prints one JSON line."""
import hashlib, json, os, struct, sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

d = sys.argv[1] if len(sys.argv) > 1 else ".gpu/tb"
exp = json.load(open(os.path.join(d, "expected.json")))
acc = EventAccumulator(os.path.join(d, exp["file"]), size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
problems = []
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
n_scalars = 0
for s in exp["scalars"]:
    events = [e for e in acc.Scalars(s["tag"]) if e.step == s["step"]] if s["tag"] in tags["scalars"] else []
    if len(events) != 1:
        problems.append(f"scalar {s['tag']}@{s['step']}: {len(events)} events")
    elif f32(events[0].value) != f32(s["value"]):
        problems.append(f"scalar {s['tag']}@{s['step']}: {events[0].value!r} != {s['value']!r}")
    else:
        n_scalars += 1
im = exp["image"]
imgs = acc.Images(im["tag"]) if im["tag"] in tags["images"] else []
if len(imgs) != 1:
    problems.append(f"image {im['tag']}: {len(imgs)} events")
else:
    e = imgs[0]
    got = dict(step=e.step, width=e.width, height=e.height, sha256=hashlib.sha256(e.encoded_image_string).hexdigest())
    for k in ("step", "width", "height", "sha256"):
        if got[k] != im[k]:
            problems.append(f"image {k}: {got[k]} != {im[k]}")
    try:
        from PIL import Image
        import io
        pil = Image.open(io.BytesIO(e.encoded_image_string))
        if pil.size != (im["width"], im["height"]):
            problems.append(f"PNG decodes to {pil.size}")
    except ImportError:
        pass
import tensorboard
print(json.dumps(dict(kind="tensorboard", tensorboard=tensorboard.__version__, scalar_tags=sorted(tags["scalars"]),
                      image_tags=tags["images"], scalars_ok=n_scalars, scalars_expected=len(exp["scalars"]),
                      problems=problems, ok=not problems)))
