// Command embed embeds a corpus through steady's Together client.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "embed: not yet: it arrives with the together package")
}
