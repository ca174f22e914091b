"""Decodes, crops and resizes real photos; the only module that decodes images.

The crop follows StackGAN: a square of side 1.5 * max(width, height) around
the centre of the bird's bounding box, clipped to the photo, so the bird
fills the frame with some context around it. The crop is then resized (with
antialiasing) to `size` x `size`; 76 = 64 * 76 / 64 leaves room for random
64 x 64 crops during training.
"""

import concurrent.futures
import os

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from sagan_tf.data.records import BadExampleError

# Part of the decoded-image caches' key: raise it when decoding changes what
# an image file gives, so that no cache made before is reused.
DECODER_VERSION = 2  # 2: photos turned upright by their EXIF orientation

IMAGE_NOT_FOUND = "image file not found"
NOT_AN_IMAGE = "not a decodable image (corrupt or unknown format)"
TRUNCATED_IMAGE = "truncated image file"
CORRUPT_IMAGE_DATA = "corrupt image data"
EMPTY_CROP = "bounding box does not overlap the image"
TOO_LARGE_IMAGE = "image too large to decode safely (Pillow's decompression-bomb limit)"


class BadImageError(BadExampleError):
    """An image that cannot be used; `reason` is the countable cause."""

    def __init__(self, path, reason, detail=""):
        message = f"{path}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.path = path
        self.reason = reason


def bird_crop_box(bbox, width, height):
    """StackGAN's enlarged, image-clipped crop box (left, top, right, bottom)."""
    x, y, box_width, box_height = bbox
    radius = int(max(box_width, box_height) * 0.75)
    center_x = int((2 * x + box_width) / 2)
    center_y = int((2 * y + box_height) / 2)
    return (max(0, center_x - radius), max(0, center_y - radius),
            min(width, center_x + radius), min(height, center_y + radius))


def _to_rgb(image):
    """Grayscale (8 or 16 bits), palette, CMYK and transparent images all become RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grayscale: Pillow's convert() clips to 0..255 instead of scaling.
        levels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(levels), 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        # Transparent pixels carry arbitrary colours; show them as white.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


# EXIF orientation -> the turn or flip that shows the photo as viewers do
# (phones store photos sideways with an orientation tag).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _decode(path):
    """(RGB image as stored, the transpose that turns it upright or None)."""
    try:
        with Image.open(path) as image:
            # PIL decodes lazily; load() now so truncation is found here.
            image.load()
            return _to_rgb(image), _UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation))
    except FileNotFoundError:
        raise BadImageError(path, IMAGE_NOT_FOUND) from None
    except UnidentifiedImageError:
        raise BadImageError(path, NOT_AN_IMAGE) from None
    except Image.DecompressionBombError as error:
        raise BadImageError(path, TOO_LARGE_IMAGE, str(error)) from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = TRUNCATED_IMAGE if "truncated" in str(error).lower() else CORRUPT_IMAGE_DATA
        raise BadImageError(path, reason, str(error)) from None


def load_image(path, bbox=None, size=76):
    """Returns the photo at `path` as uint8 [size, size, 3].

    With `bbox` = (x, y, width, height) the photo is first cropped around
    the box as StackGAN does. Raises BadImageError (a BadExampleError) for a
    missing, corrupt or truncated file.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    image, upright = _decode(path)
    if bbox is not None:
        # Boxes are in the pixels as stored: crop first, turn upright after.
        box = bird_crop_box(bbox, *image.size)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise BadImageError(path, EMPTY_CROP, f"bbox {tuple(bbox)}, image {image.size}")
        image = image.crop(box)
    # Pillow's bilinear filter widens its support when shrinking: antialiased.
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    if upright is not None:
        image = image.transpose(upright)
    return np.asarray(image, dtype=np.uint8)


def load_images(paths_bboxes, size=76, workers=None):
    """Decodes many photos in parallel threads (Pillow releases the GIL).

    `paths_bboxes` is a sequence of (path, bbox or None). Returns
    `(images, ok_indices, failures)`: uint8 [len(ok_indices), size, size, 3]
    in input order, the input indices that decoded, and (index, reason)
    for the others, so callers can skip and count them.
    """
    items = list(paths_bboxes)
    workers = workers or min(8, os.cpu_count() or 1)

    def decode(item):
        path, bbox = item
        try:
            return load_image(path, bbox, size), None
        except BadImageError as error:
            return None, error.reason

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
        results = list(executor.map(decode, items))
    ok_indices = [i for i, (image, _) in enumerate(results) if image is not None]
    failures = [(i, reason) for i, (_, reason) in enumerate(results) if reason is not None]
    images = np.zeros((len(ok_indices), size, size, 3), np.uint8)
    for row, index in enumerate(ok_indices):
        images[row] = results[index][0]
    return images, ok_indices, failures
