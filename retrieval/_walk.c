/* The lone-query walk of ``retrieval.faiss_index.FaissIndex`` in C: FAISS's answer for one query
 * (scores and vector ids, best first) to the k best listings as ``ListingHit`` tuples, each
 * listing once with its best photo.
 *
 * Why C: right after FAISS's scan has swept the CPU caches, every line of Python costs several
 * times what it costs warm; the same walk in Python took 35 us there against 12 us warm
 * (docs/performance.md). This does the same work with a few hundred bytes of machine code.
 *
 * It answers only the common case and returns None for everything else, which the Python walk
 * (``FaissIndex._walk``) then answers: a vector id outside the columns, a NaN score, an answer
 * whose first 2k photos do not settle the k listings (fewer listings, or no photo scoring below
 * the k-th), or equal scores among the kept listings (ties go by listing id, in Python). Given
 * the same arguments it returns exactly what ``FaissIndex._hits(FaissIndex._walk(...))`` does;
 * tests/test_search_arrays.py compares the two. The caller checks that ids are rows (dense).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* one row (1-d, or 2-d of one row) whose format is one of ``chars`` (after a byte-order mark)
 * with this item size */
static int is_row(const Py_buffer *view, const char *chars, Py_ssize_t itemsize) {
    const char *format = view->format ? view->format : "B";
    if (*format == '<' || *format == '=' || *format == '@') format++;
    int one_row = view->ndim == 1 || (view->ndim == 2 && view->shape[0] == 1);
    return one_row && view->itemsize == itemsize && format[0] != '\0' &&
           strchr(chars, format[0]) != NULL && format[1] == '\0';
}

/* a fixed-width bytes column (numpy "S<n>": format "<n>s") */
static int is_bytes_column(const Py_buffer *view) {
    const char *format = view->format;
    if (view->ndim != 1 || view->itemsize <= 0 || format == NULL) return 0;
    size_t n = strlen(format);
    return n > 0 && format[n - 1] == 's';
}

static PyObject *lone_hits(PyObject *module, PyObject *args) {
    PyObject *scores_obj, *ids_obj, *codes_obj, *names, *images_obj;
    PyTypeObject *hit_type;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OOOO!OnO!:lone_hits", &scores_obj, &ids_obj, &codes_obj,
                          &PyList_Type, &names, &images_obj, &k, &PyType_Type, &hit_type))
        return NULL;
    if (!PyType_IsSubtype(hit_type, &PyTuple_Type) ||
        hit_type->tp_basicsize != PyTuple_Type.tp_basicsize ||
        hit_type->tp_itemsize != PyTuple_Type.tp_itemsize) {
        PyErr_SetString(PyExc_TypeError, "lone_hits: the hit type must be a plain tuple subclass");
        return NULL;
    }
    Py_buffer views[4];
    PyObject *objects[4] = {scores_obj, ids_obj, codes_obj, images_obj};
    int taken = 0;
    PyObject *result = NULL;
    Py_ssize_t *positions = NULL;
    int32_t *table = NULL;
    for (; taken < 4; taken++)
        if (PyObject_GetBuffer(objects[taken], &views[taken],
                               PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            goto done;
    /* scores and ids: the (1, m) arrays FAISS answered */
    if (!is_row(&views[0], "f", 4) || !is_row(&views[1], "lq", 8) ||
        !is_row(&views[2], "i", 4) || views[2].ndim != 1 || !is_bytes_column(&views[3])) {
        PyErr_SetString(PyExc_TypeError, "lone_hits: expected one row of float32 scores and of "
                        "int64 ids, int32 listing codes and a bytes column of image paths");
        goto done;
    }
    const float *scores = views[0].buf;
    const int64_t *ids = views[1].buf;
    const int32_t *codes = views[2].buf;
    const char *images = views[3].buf;
    Py_ssize_t m = views[0].len / 4, n_codes = views[2].len / 4, width = views[3].itemsize;
    Py_ssize_t n_images = views[3].len / width, n_names = PyList_GET_SIZE(names);
    if (views[1].len / 8 != m || m == 0 || k <= 0) goto fallback;
    Py_ssize_t end = m < 2 * k ? m : 2 * k;  /* the walk reads the first 2k photos */
    size_t size = 16;  /* the listings seen: open addressing, at most half full */
    while (size < (size_t)(2 * end)) size <<= 1;
    table = malloc(size * sizeof(int32_t));
    positions = malloc((size_t)end * sizeof(Py_ssize_t));
    if (table == NULL || positions == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(table, 0xff, size * sizeof(int32_t));  /* -1: empty */
    Py_ssize_t count = 0;
    int settled = 0;
    float kth = 0;
    for (Py_ssize_t position = 0; position < end; position++) {
        int64_t row = ids[position];
        float value = scores[position];
        if (row < 0 || row >= n_codes || row >= n_images || isnan(value)) goto fallback;
        if (count >= k && value < kth) {  /* below the k-th listing: settled */
            settled = 1;
            break;
        }
        int32_t code = codes[row];
        if (code < 0 || code >= n_names) goto fallback;
        size_t slot = ((uint32_t)code * 2654435761u) & (size - 1);
        while (table[slot] != -1 && table[slot] != code) slot = (slot + 1) & (size - 1);
        if (table[slot] == code) continue;  /* a listing already found: this is a worse photo */
        table[slot] = code;
        if (count == k) goto fallback;  /* a listing tied with the k-th: ties go in Python */
        positions[count++] = position;
        if (count == k) kth = value;
    }
    if (!settled) goto fallback;
    for (Py_ssize_t i = 1; i < count; i++)  /* equal scores among the kept: Python orders them */
        if (scores[positions[i]] == scores[positions[i - 1]]) goto fallback;
    PyObject *hits = PyList_New(count);
    if (hits == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t position = positions[i];
        int64_t row = ids[position];
        const char *path = images + row * width;
        Py_ssize_t length = width;  /* numpy's bytes drop the trailing NULs */
        while (length > 0 && path[length - 1] == '\0') length--;
        PyObject *image = PyUnicode_DecodeUTF8(path, length, "strict");
        PyObject *score = PyFloat_FromDouble((double)scores[position]);
        PyObject *hit = hit_type->tp_alloc(hit_type, 3);
        if (image == NULL || score == NULL || hit == NULL) {
            Py_XDECREF(image);
            Py_XDECREF(score);
            Py_XDECREF(hit);
            Py_DECREF(hits);
            goto done;
        }
        PyObject *listing_id = PyList_GET_ITEM(names, codes[row]);
        Py_INCREF(listing_id);
        PyTuple_SET_ITEM(hit, 0, listing_id);
        PyTuple_SET_ITEM(hit, 1, score);
        PyTuple_SET_ITEM(hit, 2, image);
        PyList_SET_ITEM(hits, i, hit);
    }
    result = hits;
    goto done;
fallback:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(table);
    free(positions);
    for (int i = 0; i < taken; i++) PyBuffer_Release(&views[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"lone_hits", lone_hits, METH_VARARGS,
     "lone_hits(scores, ids, codes, names, images, k, hit_type) -> list of hits, or None when "
     "the Python walk must answer (see retrieval/_walk.c)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef walk_module = {PyModuleDef_HEAD_INIT, "_walk",
                                         "The lone-query walk in C (see retrieval/_walk.c).", -1,
                                         methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&walk_module); }
