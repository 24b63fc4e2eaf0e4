import VSliceModel
import VSliceSupport

/// The interrupt callback given to every format context: non-zero means "stop now". Its opaque pointer is
/// the `WorkWatch` of the file's owner (kept alive by that owner), or nil.
package let vsliceInterruptCallback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { opaque in
    if Cancellation.abortRequested { return 1 }
    guard let opaque else { return 0 }
    return Unmanaged<WorkWatch>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt ? 1 : 0
}

