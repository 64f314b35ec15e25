"""Timeloop v0.4 problems: shape (dimensions, data spaces, projections, coefficients) + instance."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

from a3cs_plugin.errors import SpecError


@dataclass
class DataSpace:
    """A tensor: ``projection[k]`` is a list of ``(coefficient, dim_index)`` terms of rank ``k``."""

    name: str
    projection: list
    read_write: bool = False
    raw_projection: list = field(default_factory=list, compare=False)

    def relevant(self, d: int) -> bool:
        return any(dim == d for rank in self.projection for _, dim in rank)


@dataclass
class Problem:
    name: str
    dimensions: list
    data_spaces: list
    instance: dict
    coefficients: dict = field(default_factory=dict)
    source: str = field(default="", compare=False)

    @property
    def sizes(self) -> list:
        return [int(self.instance[d]) for d in self.dimensions]

    @property
    def ds_names(self) -> list:
        return [ds.name for ds in self.data_spaces]

    def dim_index(self, name: str) -> int:
        return self.dimensions.index(name)

    @property
    def computes(self) -> int:
        n = 1
        for s in self.sizes:
            n *= s
        return n

    def to_dict(self) -> dict:
        shape = {"name": self.name, "dimensions": list(self.dimensions),
                 "data_spaces": [{"name": ds.name, "projection": ds.raw_projection,
                                  **({"read_write": True} if ds.read_write else {})}
                                 for ds in self.data_spaces]}
        if self.coefficients:
            shape["coefficients"] = [{"name": k, "default": v} for k, v in self.coefficients.items()]
        return {"version": 0.4, "shape": shape, "instance": dict(self.instance)}


def footprint(ext, projection) -> Any:
    """Number of points of a data space with ``projection`` (see :class:`DataSpace`) that the box
    of loop extents ``ext`` touches: per rank ``sum(coef * (ext[d] - 1)) + 1`` (exact for affine
    projections, halos included), multiplied over the ranks.  ``ext`` is indexable by dimension
    index; its entries may be numbers or numpy arrays over a batch of mappings."""
    out = None
    for rank in projection:
        e = None
        for coef, d in rank:
            term = coef * (ext[d] - 1.0)
            e = term if e is None else e + term
        e = e + 1.0
        out = e if out is None else out * e
    return out


def _as_rank(rank: Any) -> list:
    if isinstance(rank, str):
        return [[rank]]
    if isinstance(rank, list) and rank and all(isinstance(t, str) for t in rank):
        # [ [C] ] written as [C] (a single term)
        return [rank]
    return rank


def parse_problem(prob: Any, file: str = "<dict>") -> Problem:
    """Parse the ``problem`` section (v0.4: ``shape`` + ``instance``)."""
    if not isinstance(prob, dict):
        raise SpecError("problem must be a mapping", file=file, key="problem",
                        expected="{version: 0.4, shape: ..., instance: ...}")
    unknown = [k for k in prob if k not in ("version", "shape", "instance")]
    if unknown:
        raise SpecError("unknown problem key", file=file, key=f"problem.{unknown[0]}",
                        expected="version, shape, instance")
    shape, instance = prob.get("shape"), prob.get("instance")
    if not isinstance(shape, dict):
        raise SpecError("missing problem shape", file=file, key="problem.shape",
                        expected="a mapping with dimensions and data_spaces")
    if not isinstance(instance, dict):
        raise SpecError("missing problem instance", file=file, key="problem.instance",
                        expected="a mapping of dimension sizes")
    for k in shape:
        if k not in ("name", "dimensions", "data_spaces", "data-spaces", "coefficients"):
            raise SpecError("unknown problem shape key", file=file, key=f"problem.shape.{k}",
                            expected="name, dimensions, data_spaces, coefficients")
    dims = shape.get("dimensions")
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
        raise SpecError("bad problem dimensions", file=file, key="problem.shape.dimensions",
                        expected="a non-empty list of dimension names", got=dims)
    coefs = {}
    for i, c in enumerate(shape.get("coefficients") or []):
        if not isinstance(c, dict) or "name" not in c:
            raise SpecError("bad coefficient", file=file, key=f"problem.shape.coefficients[{i}]",
                            expected="{name: X, default: N}")
        coefs[c["name"]] = c.get("default", 1)
    for k, v in instance.items():
        if k in coefs:
            coefs[k] = v
    for k, v in coefs.items():
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise SpecError("coefficient (stride, dilation) is not a positive integer", file=file,
                            key=f"problem.instance.{k}", expected="an integer >= 1", got=v)
    # Timeloop reads only the dimensions, the coefficients and the densities from ``instance``
    # and ignores any other key (e.g. H, W, Hpad in its conv examples) without a warning; its v0.4
    # front end requires every instance value to be an integer.
    for k, v in instance.items():
        if k in _DENSITY_KEYS:
            _check_dense(k, v, file)
            continue
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise SpecError("instance value is not an integer", file=file, key=f"problem.instance.{k}",
                            expected="an integer (dimension size, coefficient or other variable)", got=v)
    for d in dims:
        v = instance.get(d)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise SpecError("dimension size missing or not a positive integer", file=file,
                            key=f"problem.instance.{d}", expected="an integer >= 1", got=v)
    spaces = []
    raw_ds = shape.get("data_spaces") or shape.get("data-spaces")
    if not isinstance(raw_ds, list) or not raw_ds:
        raise SpecError("missing data spaces", file=file, key="problem.shape.data_spaces",
                        expected="a list of {name, projection}")
    for i, ds in enumerate(raw_ds):
        key = f"problem.shape.data_spaces[{i}]"
        if not isinstance(ds, dict) or "name" not in ds or "projection" not in ds:
            raise SpecError("data space needs name and projection", file=file, key=key)
        bad = [k for k in ds if k not in ("name", "projection", "read_write", "read-write")]
        if bad:
            raise SpecError("unknown data-space key", file=file, key=f"{key}.{bad[0]}",
                            expected="name, projection, read_write")
        rw = ds.get("read_write", ds.get("read-write", False))
        if not isinstance(rw, bool):
            raise SpecError("read_write is not a boolean", file=file, key=f"{key}.read_write",
                            expected="true or false", got=rw)
        proj = []
        raw = ds["projection"]
        if not isinstance(raw, list):
            raise SpecError("projection must be a list", file=file, key=key + ".projection")
        for r, rank in enumerate(_as_rank_list(raw)):
            terms = []
            for term in _as_rank(rank):
                if isinstance(term, str):
                    term = [term]
                if not isinstance(term, list) or not 1 <= len(term) <= 2:
                    raise SpecError("bad projection term", file=file, key=f"{key}.projection[{r}]",
                                    expected="[dim] or [coefficient, dim]", got=term)
                dim = [t for t in term if t in dims]
                other = [t for t in term if t not in dims]
                if len(dim) != 1:
                    raise SpecError("projection term names no known dimension", file=file,
                                    key=f"{key}.projection[{r}]",
                                    expected="one of " + ", ".join(dims), got=term)
                coef = 1
                if other:
                    c = other[0]
                    if isinstance(c, (int, float)):
                        coef = int(c)
                    elif c in coefs:
                        coef = int(coefs[c])
                    else:
                        raise SpecError("unknown coefficient", file=file, key=f"{key}.projection[{r}]",
                                        expected="a coefficient declared in shape.coefficients", got=c)
                terms.append((coef, dims.index(dim[0])))
            proj.append(terms)
        spaces.append(DataSpace(name=str(ds["name"]), projection=proj,
                                read_write=bool(ds.get("read_write", ds.get("read-write", False))),
                                raw_projection=raw))
    inst = {k: v for k, v in instance.items() if k not in _DENSITY_KEYS}
    return Problem(name=str(shape.get("name", "problem")), dimensions=list(dims),
                   data_spaces=spaces, instance=inst, coefficients=coefs, source=file)


_DENSITY_KEYS = ("densities", "commonDensity")


def _is_dense(v) -> bool:
    if isinstance(v, dict):
        dist = str(v.get("distribution", "fixed_structured"))
        return dist == "fixed_structured" and _is_dense(v.get("density", 1.0))
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == 1.0


def _check_dense(key: str, value, file: str) -> None:
    """Densities are accepted when they describe dense tensors (the model is dense-only)."""
    items = value.items() if key == "densities" and isinstance(value, dict) else [(None, value)]
    for ds, v in items:
        if not _is_dense(v):
            where = f"problem.instance.{key}" + (f".{ds}" if ds is not None else "")
            raise SpecError("sparse tensors (density < 1) are not supported by the dense model",
                            file=file, key=where, expected="density 1.0 or no densities", got=v)


def _as_rank_list(raw: list) -> list:
    return raw


def conv2d_problem(N: int, C: int, M: int, P: int, Q: int, R: int, S: int, Hstride: int = 1,
                   Wstride: int = 1, Hdilation: int = 1, Wdilation: int = 1, G: int = 1,
                   name: str = "CNN_Layer") -> dict:
    """A Timeloop v0.4 conv problem dict. ``G > 1``: grouped conv, C and M are per group."""
    dims = ["C", "M", "R", "S", "N", "P", "Q"] + (["G"] if G > 1 else [])
    g = [[["G"]]] if G > 1 else []
    shape = {
        "name": name,
        "dimensions": dims,
        "coefficients": [{"name": "Wstride", "default": 1}, {"name": "Hstride", "default": 1},
                         {"name": "Wdilation", "default": 1}, {"name": "Hdilation", "default": 1}],
        "data_spaces": [
            {"name": "Weights", "projection": g + [[["C"]], [["M"]], [["R"]], [["S"]]]},
            {"name": "Inputs", "projection": [[["N"]]] + g + [[["C"]],
                                                              [["R", "Wdilation"], ["P", "Wstride"]],
                                                              [["S", "Hdilation"], ["Q", "Hstride"]]]},
            {"name": "Outputs", "projection": [[["N"]]] + g + [[["M"]], [["Q"]], [["P"]]],
             "read_write": True},
        ],
    }
    inst = {"C": C, "M": M, "R": R, "S": S, "N": N, "P": P, "Q": Q, "Wstride": Wstride,
            "Hstride": Hstride, "Wdilation": Wdilation, "Hdilation": Hdilation}
    if G > 1:
        inst["G"] = G
    return {"problem": {"version": 0.4, "shape": shape, "instance": inst}}


def linear_problem(N: int, C: int, M: int, name: str = "Linear") -> dict:
    """A fully-connected layer (batch N, C inputs, M outputs) as a Timeloop v0.4 problem dict."""
    shape = {"name": name, "dimensions": ["C", "M", "N"],
             "data_spaces": [{"name": "Weights", "projection": [[["C"]], [["M"]]]},
                             {"name": "Inputs", "projection": [[["N"]], [["C"]]]},
                             {"name": "Outputs", "projection": [[["N"]], [["M"]]], "read_write": True}]}
    return {"problem": {"version": 0.4, "shape": shape, "instance": {"C": C, "M": M, "N": N}}}
