// Command bundle-validate runs the operator-framework validators that
// `operator-sdk bundle validate --select-optional suite=operatorframework` runs,
// on a bundle directory. operator-sdk itself cannot be built here (one of its
// modules is not on the Go module proxy), so this calls the same library.
// Exit status 1 on any error or warning: a warning is a finding too.
package main

import (
	"fmt"
	"os"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bundle-validate <bundle dir> <kubernetes minor, e.g. 1.36>")
		os.Exit(2)
	}
	bundle, err := manifests.GetBundleFromDir(os.Args[1] + "/manifests")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR loading bundle: %v\n", err)
		os.Exit(1)
	}
	validators := append(interfaces.Validators{}, validation.DefaultBundleValidators...)
	validators = append(validators,
		validation.OperatorHubV2Validator,
		validation.GoodPracticesValidator,
		validation.AlphaDeprecatedAPIsValidator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
	)
	optional := map[string]string{"k8s-version": os.Args[2]}
	findings := 0
	for _, result := range validators.Validate(bundle, optional) {
		for _, e := range result.Errors {
			findings++
			fmt.Printf("ERROR %s: %s\n", result.Name, e.Error())
		}
		for _, w := range result.Warnings {
			findings++
			fmt.Printf("WARN  %s: %s\n", result.Name, w.Error())
		}
	}
	if findings > 0 {
		fmt.Printf("%d findings\n", findings)
		os.Exit(1)
	}
	fmt.Println("bundle is valid: no errors or warnings")
}
