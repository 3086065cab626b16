"""The two foreign networks the paper measures with, as architectures in the project.

* :class:`InceptionResnetV1` — the face-identity embedder of facenet-pytorch
  (Esler; the paper's reference 29): 160×160 RGB, standardised as
  ``(x - 127.5) / 128``, out a unit 512-vector.  Parameter names follow
  facenet-pytorch, so its published state dicts (``20180402-114759-vggface2.pt``,
  ``20180408-102900-casia-webface.pt``) load as they are; their classifier head
  (``logits.*``) is ignored.
* :class:`SyncNet` — the audio-visual sync expert of syncnet_python (Chung &
  Zisserman 2016): a lip tower on five 224×224 RGB frames and an audio tower on
  0.2 s of 13 MFCCs at 100 Hz, each ending in a 1024-vector.  Parameter names
  follow syncnet_python's ``S`` model, so ``syncnet_v2.model`` loads as it is.
  The paper used ModEFormer; its weights are not public in a usable form, and
  SyncNet is the expert LSE-D/LSE-C were defined with.

Nothing is downloaded: weights come from files the user names, and a missing
file is a :class:`~edidub_engine.errors.ModelMissingError` that names it.
Tests build both with random weights (``SyncNet.tiny()`` for speed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InvalidArgumentError, ModelMissingError

FACE_SIZE = 160
LIP_SIZE = 224
LIP_FRAMES = 5
MFCC_RATE_HZ = 100
MFCC_STEPS = 20  # 0.2 s of audio per video window of 5 frames at 25 fps


# ============================================================================= InceptionResnetV1
class BasicConv2d(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, kernel_size, stride, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(256, 32, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, padding=1))
        self.branch2 = nn.Sequential(BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, padding=1), BasicConv2d(32, 32, 3, 1, padding=1))
        self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block17(nn.Module):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(896, 128, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, 1, 1),
            BasicConv2d(128, 128, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            BasicConv2d(128, 128, kernel_size=(7, 1), stride=1, padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block8(nn.Module):
    def __init__(self, scale: float = 1.0, noReLU: bool = False):  # noqa: N803 - facenet-pytorch's name
        super().__init__()
        self.scale = scale
        self.noReLU = noReLU
        self.branch0 = BasicConv2d(1792, 192, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, 1, 1),
            BasicConv2d(192, 192, kernel_size=(1, 3), stride=1, padding=(0, 1)),
            BasicConv2d(192, 192, kernel_size=(3, 1), stride=1, padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
        if not self.noReLU:
            self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1)) * self.scale + x
        return out if self.noReLU else self.relu(out)


class Mixed_6a(nn.Module):  # noqa: N801
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(BasicConv2d(256, 192, 1, 1), BasicConv2d(192, 192, 3, 1, padding=1), BasicConv2d(192, 256, 3, 2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed_7a(nn.Module):  # noqa: N801
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 384, 3, 2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 2))
        self.branch2 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 1, padding=1), BasicConv2d(256, 256, 3, 2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResnetV1(nn.Module):
    """facenet-pytorch's InceptionResnetV1 without the classifier: ``[N,3,160,160]`` standardised → unit ``[N,512]``."""

    def __init__(self, dropout_prob: float = 0.6):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, kernel_size=3, stride=1)
        self.conv2d_2b = BasicConv2d(32, 64, kernel_size=3, stride=1, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, kernel_size=1, stride=1)
        self.conv2d_4a = BasicConv2d(80, 192, kernel_size=3, stride=1)
        self.conv2d_4b = BasicConv2d(192, 256, kernel_size=3, stride=2)
        self.repeat_1 = nn.Sequential(*[Block35(scale=0.17) for _ in range(5)])
        self.mixed_6a = Mixed_6a()
        self.repeat_2 = nn.Sequential(*[Block17(scale=0.10) for _ in range(10)])
        self.mixed_7a = Mixed_7a()
        self.repeat_3 = nn.Sequential(*[Block8(scale=0.20) for _ in range(5)])
        self.block8 = Block8(noReLU=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_prob)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x):
        for layer in (self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b, self.conv2d_4a,
                      self.conv2d_4b, self.repeat_1, self.mixed_6a, self.repeat_2, self.mixed_7a, self.repeat_3, self.block8,
                      self.avgpool_1a, self.dropout):
            x = layer(x)
        x = self.last_bn(self.last_linear(x.view(x.shape[0], -1)))
        return F.normalize(x, p=2, dim=1)


# ============================================================================= SyncNet
class SyncNet(nn.Module):
    """syncnet_python's ``S``: lip tower on ``[N,3,5,224,224]``, audio tower on MFCC ``[N,1,13,20]``.

    ``width`` scales every channel count (1.0 is the published network; the
    spatial plan is the same at any width, so inputs keep their sizes).
    """

    def __init__(self, embedding: int = 1024, width: float = 1.0):
        super().__init__()
        c = lambda n: max(4, int(round(n * width)))  # noqa: E731
        self.width, self.embedding = width, embedding
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, c(64), kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            nn.Conv2d(c(64), c(192), kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            nn.Conv2d(c(192), c(384), kernel_size=(3, 3), padding=(1, 1)), nn.BatchNorm2d(c(384)), nn.ReLU(inplace=True),
            nn.Conv2d(c(384), c(256), kernel_size=(3, 3), padding=(1, 1)), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(256), kernel_size=(3, 3), padding=(1, 1)), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            nn.Conv2d(c(256), c(512), kernel_size=(5, 4), padding=(0, 0)), nn.BatchNorm2d(c(512)), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(nn.Linear(c(512), c(512)), nn.BatchNorm1d(c(512)), nn.ReLU(), nn.Linear(c(512), embedding))
        self.netfclip = nn.Sequential(nn.Linear(c(512), c(512)), nn.BatchNorm1d(c(512)), nn.ReLU(), nn.Linear(c(512), embedding))
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, c(96), kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0), nn.BatchNorm3d(c(96)), nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(c(96), c(256), kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(c(256), c(256), kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(c(256), c(512), kernel_size=(1, 6, 6), padding=0), nn.BatchNorm3d(c(512)), nn.ReLU(inplace=True),
        )

    @classmethod
    def tiny(cls, embedding: int = 64) -> "SyncNet":
        """A narrow variant for tests (same input sizes, 1/16 of the channels)."""
        return cls(embedding=embedding, width=1 / 16)

    def audio_features(self, mfcc: torch.Tensor) -> torch.Tensor:
        """The audio tower up to its last hidden layer (the input of the final Linear)."""
        mid = self.netcnnaud(mfcc)
        return self.netfcaud[:-1](mid.view(mid.size(0), -1))

    def lip_features(self, frames: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnlip(frames)
        return self.netfclip[:-1](mid.view(mid.size(0), -1))

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.netfcaud[-1](self.audio_features(mfcc))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        return self.netfclip[-1](self.lip_features(frames))


# ============================================================================= MFCC
def mfcc(signal: np.ndarray, sample_rate_hz: int = 16000, *, numcep: int = 13, nfilt: int = 26, nfft: int = 512,
         winlen_s: float = 0.025, winstep_s: float = 0.01, preemph: float = 0.97, ceplifter: int = 22) -> np.ndarray:
    """``[frames, numcep]`` MFCCs with python_speech_features' defaults (what syncnet_python feeds SyncNet).

    Frame ``i`` starts at sample ``i * winstep``; the first coefficient is
    replaced by the log frame energy (``appendEnergy=True``).
    """
    from scipy.fft import dct

    sig = np.asarray(signal, np.float64)
    sig = np.append(sig[:1], sig[1:] - preemph * sig[:-1]) if sig.size else sig
    frame_len, step = int(round(winlen_s * sample_rate_hz)), int(round(winstep_s * sample_rate_hz))
    n = 1 if sig.size <= frame_len else 1 + int(np.ceil((sig.size - frame_len) / step))
    padded = np.concatenate([sig, np.zeros(max(0, (n - 1) * step + frame_len - sig.size))])
    idx = np.arange(frame_len)[None, :] + step * np.arange(n)[:, None]
    frames = padded[idx]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    # Mel filterbank (python_speech_features.get_filterbanks)
    mel = lambda hz: 2595 * np.log10(1 + hz / 700.0)  # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595.0) - 1)  # noqa: E731
    points = inv(np.linspace(mel(0), mel(sample_rate_hz / 2), nfilt + 2))
    bins = np.floor((nfft + 1) * points / sample_rate_hz).astype(int)
    bank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(bins[j], bins[j + 1]):
            bank[j, i] = (i - bins[j]) / max(1, bins[j + 1] - bins[j])
        for i in range(bins[j + 1], bins[j + 2]):
            bank[j, i] = (bins[j + 2] - i) / max(1, bins[j + 2] - bins[j + 1])
    feat = power @ bank.T
    feat = np.log(np.where(feat == 0, np.finfo(float).eps, feat))
    cep = dct(feat, type=2, axis=1, norm="ortho")[:, :numcep]
    lift = 1 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter)
    cep = cep * lift
    cep[:, 0] = np.log(energy)
    return cep


# ============================================================================= loading
def _load_state(path: str | os.PathLike | None, *, what: str, hint: str) -> dict[str, torch.Tensor]:
    if path is None:
        raise ModelMissingError(f"no {what} weights were given", hint=hint)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelMissingError(f"{what} weights {file} do not exist", hint=hint, details={"path": str(file)})
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file))
    else:
        try:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InvalidArgumentError(f"{what} weights {file} cannot be read as a state dict ({exc})",
                                       hint="give a PyTorch state dict (.pt/.pth/.model) or a .safetensors file") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InvalidArgumentError(f"{what} weights {file} hold a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module.").removeprefix("__S__."): v for k, v in state.items()}


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], *, what: str, path, ignore: Sequence[str] = ()) -> nn.Module:
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in ignore)}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise InvalidArgumentError(
            f"{what} weights {path} do not fit the architecture: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} of another shape (first: {(missing + unexpected + wrong)[:3]})",
            hint="use the published state dict of this network",
        )
    model.load_state_dict(state)
    return model.eval()


FACE_WEIGHTS_HINT = ("pass --id-weights FILE: facenet-pytorch's InceptionResnetV1 state dict, e.g. 20180402-114759-vggface2.pt "
                     "(nothing is downloaded)")
SYNC_WEIGHTS_HINT = "pass --sync-weights FILE: syncnet_python's syncnet_v2.model state dict (nothing is downloaded)"


def load_face_embedder(path: str | os.PathLike | None) -> "FaceEmbedder":
    state = _load_state(path, what="face-identity (InceptionResnetV1)", hint=FACE_WEIGHTS_HINT)
    net = _load_into(InceptionResnetV1(), state, what="InceptionResnetV1", path=path, ignore=("logits.",))
    return FaceEmbedder(net)


def load_sync_expert(path: str | os.PathLike | None) -> "SyncExpert":
    state = _load_state(path, what="sync expert (SyncNet)", hint=SYNC_WEIGHTS_HINT)
    embedding = state["netfcaud.3.weight"].shape[0] if "netfcaud.3.weight" in state else 1024
    width = state["netcnnaud.0.weight"].shape[0] / 64 if "netcnnaud.0.weight" in state else 1.0  # a narrow variant saved by tests
    net = _load_into(SyncNet(embedding=embedding, width=width), state, what="SyncNet", path=path)
    return SyncExpert(net)


# ============================================================================= wrappers
class FaceEmbedder:
    """Unit identity embeddings of face crops (``[N, H, W, 3]`` uint8 RGB, resized to 160)."""

    def __init__(self, net: nn.Module, *, batch: int = 16):
        self.net = net.eval()
        self.batch = batch

    @torch.no_grad()
    def embed(self, crops: np.ndarray) -> np.ndarray:
        import cv2

        out = []
        for i in range(0, len(crops), self.batch):
            chunk = [c if c.shape[:2] == (FACE_SIZE, FACE_SIZE) else cv2.resize(c, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                     for c in crops[i : i + self.batch]]
            x = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float()
            out.append(self.net((x - 127.5) / 128.0).numpy())
        return np.concatenate(out) if out else np.zeros((0, 512))


class SyncExpert:
    """SyncNet embeddings per video frame: a 5-frame lip window and 0.2 s of MFCCs centred alike.

    Window ``t`` holds frames ``t .. t+4`` and the audio of the same 0.2 s
    (syncnet_python's layout, assuming 25 fps; other rates are resampled to
    25 fps-equivalent audio steps of ``100 / fps`` MFCC frames).
    """

    def __init__(self, net: SyncNet, *, batch: int = 20):
        self.net = net.eval()
        self.batch = batch

    @torch.no_grad()
    def embed_video(self, crops: np.ndarray) -> np.ndarray:
        """``[N, 224, 224, 3]`` uint8 face crops → ``[N - 4, D]`` lip-window embeddings."""
        import cv2

        crops = np.stack([c if c.shape[:2] == (LIP_SIZE, LIP_SIZE) else cv2.resize(c, (LIP_SIZE, LIP_SIZE), interpolation=cv2.INTER_AREA)
                          for c in crops])
        x = torch.from_numpy(crops).permute(3, 0, 1, 2).float()  # [3, N, H, W] (syncnet feeds 0..255 floats)
        n = len(crops) - LIP_FRAMES + 1
        out = []
        for i in range(0, max(0, n), self.batch):
            windows = torch.stack([x[:, t : t + LIP_FRAMES] for t in range(i, min(n, i + self.batch))])
            out.append(self.net.forward_lip(windows).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.net.embedding))

    def mfcc_windows(self, audio16k: np.ndarray, frames: int, fps: float = 25.0) -> torch.Tensor:
        cc = mfcc(audio16k, 16000).T  # [13, T]
        step = MFCC_RATE_HZ / float(fps)
        need = int(np.ceil((frames - LIP_FRAMES) * step)) + MFCC_STEPS
        if cc.shape[1] < need:
            cc = np.pad(cc, ((0, 0), (0, need - cc.shape[1])))
        starts = [int(round(t * step)) for t in range(frames - LIP_FRAMES + 1)]
        return torch.from_numpy(np.stack([cc[:, s : s + MFCC_STEPS] for s in starts])[:, None]).float()

    @torch.no_grad()
    def embed_audio(self, audio16k: np.ndarray, frames: int, fps: float = 25.0) -> np.ndarray:
        """16 kHz mono audio under ``frames`` video frames → ``[frames - 4, D]`` audio-window embeddings."""
        windows = self.mfcc_windows(audio16k, frames, fps)
        out = [self.net.forward_aud(windows[i : i + self.batch]).numpy() for i in range(0, len(windows), self.batch)]
        return np.concatenate(out) if out else np.zeros((0, self.net.embedding))


__all__ = [
    "FaceEmbedder",
    "InceptionResnetV1",
    "SyncExpert",
    "SyncNet",
    "load_face_embedder",
    "load_sync_expert",
    "mfcc",
]
