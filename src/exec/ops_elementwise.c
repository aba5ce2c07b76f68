/* The elementwise family table. Kernels live in ops_unary.c and ops_binary.c; each def handles
 * every opset of its op (attribute-to-input changes are checked against n->opset), so
 * since_opset is the version that introduced the op. */
#include "ops_ew.h"

#define U(name, since) \
    { name, since, qc_ew_unary_infer, qc_ew_unary_run, qc_ew_unary_prepare, NULL, NULL }
#define B(name, since) \
    { name, since, qc_ew_binary_infer, qc_ew_binary_run, qc_ew_binary_prepare, NULL, NULL }

const qc_op_def qc_ops_elementwise[] = {
    B("Add", 1), B("Sub", 1), B("Mul", 1), B("Div", 1), B("Pow", 1), B("Mod", 10),
    B("PRelu", 1), B("Min", 1), B("Max", 1), B("Sum", 1), B("Mean", 1),
    B("Equal", 1), B("Less", 1), B("Greater", 1), B("LessOrEqual", 12),
    B("GreaterOrEqual", 12), B("And", 1), B("Or", 1), B("Xor", 1), B("Where", 9),

    U("Sqrt", 1), U("Exp", 1), U("Log", 1), U("Reciprocal", 1), U("Sigmoid", 1),
    U("HardSigmoid", 1), U("HardSwish", 14), U("Tanh", 1), U("Erf", 9), U("Gelu", 20),
    U("Floor", 1), U("Ceil", 1), U("Round", 11), U("Softplus", 1), U("Softsign", 1),
    U("Elu", 1), U("Selu", 1), U("Celu", 12), U("ThresholdedRelu", 10), U("Shrink", 9),
    U("LeakyRelu", 1), U("Sin", 7), U("Cos", 7), U("Tan", 7), U("Asin", 7), U("Acos", 7),
    U("Atan", 7), U("Sinh", 9), U("Cosh", 9), U("Asinh", 9), U("Acosh", 9), U("Atanh", 9),
    U("Mish", 18), U("IsNaN", 9), U("IsInf", 10), U("Neg", 1), U("Abs", 1), U("Sign", 9),
    U("Relu", 1), U("Clip", 1), U("Not", 1), U("Identity", 1), U("Dropout", 1),
    U("Cast", 1), U("CastLike", 15),
    { 0 }
};
