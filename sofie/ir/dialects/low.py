"""The `low` dialect: buffers in one arena and kernel calls in destination-passing style.

Every decision is made when these ops are built (kernel, sizes, buffer offsets); the C++
printer only spells them out. Operands list inputs first, then the outputs written.
"""
