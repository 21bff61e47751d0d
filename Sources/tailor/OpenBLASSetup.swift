import Foundation

/// Debian's OpenBLAS 0.3.21 does not recognise Zen 4/5 CPUs and falls back to its AVX2 kernels;
/// `OPENBLAS_CORETYPE=SkylakeX` selects the AVX-512 ones, which are about twice as fast here. The
/// library reads the variable when it loads, before `main`, so the process sets it and re-executes
/// itself once. A value the user set is left alone.
enum OpenBLASSetup {
    static func ensureCoreType() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["TAILOR_NO_REEXEC"] == nil else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              cpuinfo.contains("avx512f"), cpuinfo.contains("avx512bw"), cpuinfo.contains("avx512vl") else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returns only on failure: carry on with the default kernels.
    }
}
