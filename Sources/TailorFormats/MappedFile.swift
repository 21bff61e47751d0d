#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Model weights are read in place, never copied.
// @unchecked Sendable: a read-only mapping (PROT_READ) whose address and size never change; unmapped
// only in deinit, when no one holds it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let bytes: UnsafeRawPointer

    public init(path: String) throws(FormatError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            // mmap of zero bytes fails; give an empty but valid pointer so callers report "truncated".
            bytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        bytes = UnsafeRawPointer(p)
    }

    deinit {
        if size == 0 { UnsafeMutableRawPointer(mutating: bytes).deallocate() }
        else { munmap(UnsafeMutableRawPointer(mutating: bytes), size) }
    }
}
