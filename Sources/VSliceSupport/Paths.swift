import Foundation

/// Paths as vslice compares and stores them.
package enum Paths {
    /// `path` made absolute against the current folder, with `.` and `..` removed (symlinks kept).
    package static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
    /// `path` made absolute with every symlink resolved: two names of one file compare equal.
    package static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
}
