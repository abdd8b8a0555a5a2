# Fused float/double wrappers over scipy.linalg.cython_blas, called from
# nogil code on row-major (C-ordered) arrays.
#
# BLAS is column-major. A row-major m x n matrix is, byte for byte, the
# column-major n x m matrix of its transpose, so every wrapper below asks
# BLAS for the transposed product and passes the dimensions swapped.
#
# scipy's BLAS takes int dimensions. Every dimension and leading dimension
# passed here is a chunk's row count (at most CHUNK_SIZE) or D, which each
# kernel's entry point checks fits in an int (_chunk.check_int_dims: a
# ValueError naming the limit, before any cast).

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm, dsyrk, ssyrk, dtrmm, strmm


cdef inline void trmm_right_upper(
    int n_rows,                 # IN
    int n_cols,                 # IN
    const floating *upper,      # IN  n_cols x n_cols, upper-triangular, row-major
    floating *B,                # INOUT n_rows x n_cols, row-major
) noexcept nogil:
    """B := B @ upper.

    In column-major terms that is B^T := upper^T @ B^T; the memory of the
    row-major upper-triangular factor is its transpose in column-major,
    a lower-triangular matrix multiplied from the left.
    """
    cdef char side = b'L'
    cdef char uplo = b'L'
    cdef char transa = b'N'
    cdef char diag = b'N'
    cdef int m = n_cols
    cdef int n = n_rows
    cdef int ld = n_cols
    cdef floating alpha = 1.0
    if floating is float:
        strmm(&side, &uplo, &transa, &diag, &m, &n, &alpha,
              <float *> upper, &ld, B, &ld)
    else:
        dtrmm(&side, &uplo, &transa, &diag, &m, &n, &alpha,
              <double *> upper, &ld, B, &ld)


cdef inline void syrk_lower_tn(
    int n_rows,                 # IN
    int n_cols,                 # IN
    const floating *A,          # IN  n_rows x n_cols, row-major
    floating beta,              # IN
    floating *C,                # INOUT n_cols x n_cols, row-major; lower triangle written
) noexcept nogil:
    """C := A^T @ A + beta * C, on the lower triangle of row-major C.

    The row-major A is the column-major A^T (n_cols x n_rows): BLAS computes
    A^T (A^T)^T with trans='N'. Its upper triangle in column-major is the
    lower triangle in row-major.
    """
    cdef char uplo = b'U'
    cdef char trans = b'N'
    cdef int n = n_cols
    cdef int k = n_rows
    cdef int lda = n_cols
    cdef int ldc = n_cols
    cdef floating alpha = 1.0
    if floating is float:
        ssyrk(&uplo, &trans, &n, &k, &alpha, <float *> A, &lda, &beta, C, &ldc)
    else:
        dsyrk(&uplo, &trans, &n, &k, &alpha, <double *> A, &lda, &beta, C, &ldc)


cdef inline void gemm_nn(
    int m,                      # IN  rows of A and C
    int n,                      # IN  columns of B and C
    int k,                      # IN  columns of A, rows of B
    const floating *A,          # IN  m x k, row-major
    const floating *B,          # IN  k x n, row-major
    floating beta,              # IN
    floating *C,                # INOUT m x n, row-major
) noexcept nogil:
    """C := A @ B + beta * C, all row-major.

    Column-major BLAS sees the transposes: C^T := B^T A^T, so B goes first.
    """
    cdef char trans = b'N'
    cdef floating alpha = 1.0
    if floating is float:
        sgemm(&trans, &trans, &n, &m, &k, &alpha, <float *> B, &n,
              <float *> A, &k, &beta, C, &n)
    else:
        dgemm(&trans, &trans, &n, &m, &k, &alpha, <double *> B, &n,
              <double *> A, &k, &beta, C, &n)
