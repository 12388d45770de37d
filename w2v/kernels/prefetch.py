"""A software prefetch for the CPU kernels: ask the processor to start loading an embedding row
before the code that reads it runs.

The sequential kernels' windows touch rows scattered over two (V, D) matrices, most of them
outside the processor's private caches. Each window's steps form one chain of dependent
arithmetic (a score, its sigmoid, the rows' updates), so the processor cannot run far enough
ahead to overlap the next window's cache misses with this window's work; a prefetch issued a
window or two ahead does. `prefetch_row` is a Numba intrinsic around LLVM's `llvm.prefetch`; a
prefetch is only a hint, and never changes a result.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LINE = 64  # bytes of a cache line on x86-64 and most ARM cores


@intrinsic
def prefetch_row(typingctx, matrix, row):
    """Prefetches matrix[row, :] of a 2-D array, line by line, for writing (it will be updated)
    into every cache level. The address is not checked: a prefetch is dropped by the processor,
    never a fault, so a bad row costs nothing but the hint."""
    if not (isinstance(matrix, types.Array) and matrix.ndim == 2 and isinstance(row, types.Integer)):
        return None
    sig = types.void(matrix, row)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        i64, i32, i8p = ir.IntType(64), ir.IntType(32), ir.IntType(8).as_pointer()
        row_stride, column_stride = cgutils.unpack_tuple(builder, array.strides, 2)
        extent = builder.mul(cgutils.unpack_tuple(builder, array.shape, 2)[1], column_stride)  # the row's bytes
        index = context.cast(builder, args[1], signature.args[1], types.int64)
        start = builder.add(builder.ptrtoint(array.data, i64), builder.mul(index, row_stride))
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        prefetch = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        flags = [ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)]  # write, keep in all levels, data
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), extent, ir.Constant(i64, _LINE)) as (offset, _):
            builder.call(prefetch, [builder.inttoptr(builder.add(start, offset), i8p), *flags])
        return context.get_dummy_value()

    return sig, codegen
