// What the command line (the kit's one client) sees of the layers below the kit: the model and support as they
// are — the vocabulary every command speaks —, the ledger's job store that `status`, `cancel` and `gc` read, and
// of the media layer only the few names a command uses directly. The CLI imports the kit alone.
@_exported import VSliceLedger
@_exported import VSliceModel
@_exported import VSliceSupport
import VSliceMedia

/// The output containers an extension names.
public typealias Container = VSliceMedia.Container
/// How loud FFmpeg's own log is.
public typealias FFmpegLog = VSliceMedia.FFmpegLog

extension Probe {
    /// `vslice probe`: opens and indexes `path` (the media layer's `Probe(path:)`).
    public static func read(_ path: String) throws(VSliceError) -> Probe { try Probe(path: path) }
}
