import Foundation

/// The inputs of `vslice batch` and where their outputs go: OUTDIR mirrors DIR's layout, with the output
/// container's extension.
public struct BatchItem: Sendable, Equatable {
    public var input: String
    /// The input's path relative to DIR.
    public var relative: String
    public var output: String
}

public enum BatchPlanner {
    /// Regular, non-hidden files under `dir` (below it too with `recursive`) whose name — or, for a pattern
    /// with a `/`, relative path — matches the glob `pattern`, sorted by path. OUTDIR is never scanned.
    public static func items(dir: String, outDir: String, pattern: String, recursive: Bool,
                             extension ext: String) throws(VSliceError) -> [BatchItem] {
        let fm = FileManager.default
        let root = URL(fileURLWithPath: dir).standardizedFileURL.resolvingSymlinksInPath().path
        let outRoot = URL(fileURLWithPath: outDir).standardizedFileURL.resolvingSymlinksInPath().path
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "batch", path: dir, reason: "not a folder")
        }
        var relatives: [String] = []
        func scan(_ rel: String) throws(VSliceError) {
            let abs = rel.isEmpty ? root : (root as NSString).appendingPathComponent(rel)
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: abs) } catch {
                throw VSliceError(.usage, "batch", path: abs, reason: "cannot list the folder")
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                let child = (root as NSString).appendingPathComponent(childRel)
                var st = stat()
                guard lstat(child, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    if recursive && child != outRoot { try scan(childRel) }
                    continue
                }
                // Every other kind is a candidate: FIFOs, sockets and devices too, so that the transcode refuses
                // them with a clear message.
                let subject = pattern.contains("/") ? childRel : name
                if fnmatch(pattern, subject, 0) == 0 { relatives.append(childRel) }
            }
        }
        try scan("")
        return relatives.map { rel in
            let stem = (rel as NSString).deletingPathExtension
            return BatchItem(input: (root as NSString).appendingPathComponent(rel), relative: rel,
                             output: (outRoot as NSString).appendingPathComponent(stem + "." + ext))
        }
    }
}
