"""Moving pictures between PIL, raw RGBA buffers and (1, 3, H, W) tensors in 0..1."""
import numpy as np
import torch
from PIL import Image


class ImageError(ValueError):
    """A file is missing, empty, truncated or not an image."""


def open_image(path, as_stored=False):
    """Load an image file fully (so truncation shows here, not later), or raise ImageError.
    Colours are made sRGB (to_srgb) unless as_stored: a mask's numbers are its meaning."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy() if as_stored else to_srgb(img.copy())
    except FileNotFoundError:
        raise ImageError('%s: no such file' % path) from None
    except IsADirectoryError:
        raise ImageError('%s: is a directory, not an image' % path) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError('%s: not a readable image (%s)' % (path, e)) from None


def to_srgb(img: Image.Image) -> Image.Image:
    """Colours as sRGB when the file embeds another colour profile (a damaged or unusual
    profile is ignored: the numbers are then taken as sRGB, as most viewers do)."""
    icc = img.info.get('icc_profile')
    if not icc or img.mode not in ('RGB', 'RGBA', 'L', 'LA'):
        return img
    try:
        import io
        from PIL import ImageCms
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        base = rgb(img)
        out = ImageCms.profileToProfile(base, src, ImageCms.createProfile('sRGB'),
                                        outputMode='RGB')
    except Exception:  # noqa: BLE001 - ImageCms raises its own PyCMSError, OSError, ...
        return img
    if 'A' in img.mode:
        out.putalpha(img.getchannel('A'))
    return out


def rgb(img: Image.Image) -> Image.Image:
    """Any mode to RGB (grey replicated; alpha dropped - callers keep it separately)."""
    if img.mode == 'RGB':
        return img
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() if arr.size else 0
        if img.mode == 'F':         # float images: 0..1 by convention, else 0..255
            top = 1.0 if peak <= 1.0 else 255.0
        else:
            top = 65535.0 if peak > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8))
    return img.convert('RGBA').convert('RGB') if 'A' in img.mode or img.mode == 'P' \
        else img.convert('RGB')


def working_size(size_wh, longest):
    """(w, h) scaled so the longest side is `longest` (0 = unchanged); at least 1 px each."""
    w, h = size_wh
    if not longest or max(w, h) == longest:
        return w, h
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize(img: Image.Image, size_wh) -> Image.Image:
    if img.size == tuple(size_wh):
        return img
    return img.resize(tuple(size_wh), Image.LANCZOS if size_wh[0] < img.size[0] else Image.BICUBIC)


def to_tensor(img: Image.Image, device=None) -> torch.Tensor:
    arr = np.asarray(rgb(img), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    arr = tensor.detach().float().clamp(0, 1).squeeze(0).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray((arr * 255 + 0.5).astype(np.uint8), 'RGB')


def from_rgba_bytes(data: bytes, width: int, height: int) -> Image.Image:
    return Image.frombytes('RGBA', (width, height), data)


def with_alpha(result: Image.Image, source_rgba: Image.Image) -> bytes:
    """The result at the source's size, with the source's alpha unchanged, as RGBA8 bytes."""
    out = resize(rgb(result), source_rgba.size).convert('RGBA')
    out.putalpha(source_rgba.getchannel('A'))
    return out.tobytes()
