// Debian's OpenBLAS 0.3.21 does not recognise Zen 4/5 CPUs and falls back to its AVX2 kernels;
// `OPENBLAS_CORETYPE=SkylakeX` selects the AVX-512 ones, which are about twice as fast here. The
// library reads the variable when it loads, before `main`, so a process sets it and re-executes
// itself once. A value the user set is left alone. Every program built on Tailor (the CLI, a
// server) calls this first thing in `main`.
import Foundation

public enum OpenBLASSetup {
    /// Whether this CPU wants the AVX-512 core type and the environment does not say otherwise.
    public static var needsCoreType: Bool {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["TAILOR_NO_REEXEC"] == nil else { return false }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        return cpuinfo.contains("avx512f") && cpuinfo.contains("avx512bw") && cpuinfo.contains("avx512vl")
    }

    /// Sets OPENBLAS_CORETYPE where it is needed and re-executes the program with `arguments`
    /// (returns only when nothing was needed, or when re-executing failed: the default kernels
    /// are then used).
    public static func ensureCoreType(reexecuting arguments: [String] = CommandLine.arguments) {
        guard needsCoreType else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        var cargs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
    }
}
