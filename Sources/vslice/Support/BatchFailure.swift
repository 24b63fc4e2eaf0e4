import ArgumentParser
import Foundation
import Logging
import VSliceKit

/// Some items of a batch (or of `resume --all`) failed: exit 6.
struct BatchFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
    static let exitCode: Int32 = 6
}
