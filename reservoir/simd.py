"""A dot product in eight fixed lanes, vectorised without changing its rounding.

The readouts' ``w . x`` is summed in eight interleaved partial sums (lane ``c`` adds the products
of entries ``start + c``, ``start + c + 8``, ...), a fixed order that makes the outputs
reproducible and lets the offline replay equal the online update bit for bit. Written as eight
scalar chains, LLVM does not vectorise it (0.26 ns per product on the development machine);
written as a plain loop with ``fastmath={"reassoc"}`` it vectorises, but in an order that depends
on the surrounding code. :func:`lane_sums` emits the eight lanes as one 8-wide vector
multiply and add per step (LLVM IR through :func:`numba.extending.intrinsic`, no fast-math
flags): the same additions in the same order as the scalar chains, so bit-identical to them, and
about 4x faster (tested against the plain Python loop, which is also what runs where the kernels
run interpreted).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

LANES = 8


def lane_sums(w, x, start, stop):
    """The eight lane sums of ``w[start:stop] . x[start:stop]`` over its first ``8 * floor((stop -
    start) / 8)`` entries: lane ``c`` is ``sum_j w[start + 8 j + c] x[start + 8 j + c]``, added in
    order of ``j`` from 0.0. The plain form; compiled code uses the vector form (same values)."""
    sums = [0.0] * LANES
    head = stop - (stop - start) % LANES
    for f in range(start, head, LANES):
        for c in range(LANES):
            sums[c] += w[f + c] * x[f + c]
    return tuple(sums)


@intrinsic
def _vector_lane_sums(typingctx, w, x, start, stop):
    if not (isinstance(w, types.Array) and isinstance(x, types.Array) and w.dtype == types.float64
            and x.dtype == types.float64 and w.ndim == 1 and x.ndim == 1 and w.layout == "C" and x.layout == "C"):
        return None
    sig = types.UniTuple(types.float64, LANES)(w, x, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        w_array = context.make_array(signature.args[0])(context, builder, args[0])
        x_array = context.make_array(signature.args[1])(context, builder, args[1])
        start = context.cast(builder, args[2], signature.args[2], types.intp)
        stop = context.cast(builder, args[3], signature.args[3], types.intp)
        vector = ir.VectorType(ir.DoubleType(), LANES)
        total = cgutils.alloca_once_value(builder, ir.Constant(vector, [0.0] * LANES))
        lanes = ir.Constant(start.type, LANES)
        n_vectors = builder.sdiv(builder.sub(stop, start), lanes)
        with cgutils.for_range(builder, n_vectors) as loop:
            offset = builder.add(start, builder.mul(loop.index, lanes))
            w_vector = builder.load(builder.bitcast(builder.gep(w_array.data, [offset]), vector.as_pointer()), align=8)
            x_vector = builder.load(builder.bitcast(builder.gep(x_array.data, [offset]), vector.as_pointer()), align=8)
            builder.store(builder.fadd(builder.load(total), builder.fmul(w_vector, x_vector)), total)
        result = builder.load(total)
        values = [builder.extract_element(result, ir.Constant(ir.IntType(32), c)) for c in range(LANES)]
        return context.make_tuple(builder, signature.return_type, values)

    return sig, codegen


@overload(lane_sums, jit_options={"cache": True})
def _lane_sums_compiled(w, x, start, stop):
    if w.layout == "C" and x.layout == "C":
        def implementation(w, x, start, stop):
            return _vector_lane_sums(w, x, start, stop)
    else:  # strided views: the scalar chains (the same values)
        def implementation(w, x, start, stop):
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
            for f in range(start, stop - (stop - start) % LANES, LANES):
                s0 += w[f] * x[f]
                s1 += w[f + 1] * x[f + 1]
                s2 += w[f + 2] * x[f + 2]
                s3 += w[f + 3] * x[f + 3]
                s4 += w[f + 4] * x[f + 4]
                s5 += w[f + 5] * x[f + 5]
                s6 += w[f + 6] * x[f + 6]
                s7 += w[f + 7] * x[f + 7]
            return s0, s1, s2, s3, s4, s5, s6, s7
    return implementation


__all__ = ["LANES", "lane_sums"]
