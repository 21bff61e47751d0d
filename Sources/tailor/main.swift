import TailorKernels
print("hi")
