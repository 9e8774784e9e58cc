/* A CPython extension written in C, built instrumented by kcov-build. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
spam_classify(PyObject *self, PyObject *args)
{
	long v;

	if (!PyArg_ParseTuple(args, "l", &v))
		return NULL;
	if (v < 0)
		return PyUnicode_FromString("negative");
	if (v == 4242)
		return PyUnicode_FromString("magic");
	return PyUnicode_FromString("plain");
}

static PyMethodDef spam_methods[] = {
	{ "classify", spam_classify, METH_VARARGS, "Classify an integer." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef spam_module = {
	PyModuleDef_HEAD_INIT, "spam", NULL, -1, spam_methods,
};

PyMODINIT_FUNC
PyInit_spam(void)
{
	return PyModule_Create(&spam_module);
}
